"""Reservations: units of a level held for an order, then fulfilled (an `out` movement),
released, or lapsed. Each use case locks the product's stock row first, as every stock
change does, which settles its holds that are past their time before anything counts
them (stock_service.expire_past_due); what is available is decided under that lock."""
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import and_, case, distinct, select

from db import db
from models import Product, Reservation, utc_now
from models.types import utcnow
from schemas.reservation import Extend, Fulfil, Hold, ReservationQuery
from services.pagination import Ordering, paginate
from services.stock_service import (
    announced,
    change_held,
    hold,
    lock_level,
    lock_stock,
    record_change,
    reservation_shown,
)
from services.transaction import begin_snapshot, run_in_write_transaction
from utils.exceptions import Conflict, NotFound
from utils.pagination import Page

NEWEST_FIRST = Ordering("-id", (Reservation.id.desc(),))
PAST_DUE = and_(Reservation.status == "active", Reservation.expires_at <= utc_now())
# A reservation as shown: one past its time reads `expired` whether or not it was marked yet.
VIEW = select(
    *(column for column in Reservation.__table__.columns if column.key != "status"),
    case((PAST_DUE, "expired"), else_=Reservation.status).label("status"),
)
EXPIRE_BATCH = 200


def reserve(data: Hold, actor: str | None = None) -> SimpleNamespace:
    def work() -> SimpleNamespace:
        stock = lock_stock(data.product_id)
        return hold(stock, lock_level(stock, data.warehouse_id), data, actor)

    return run_in_write_transaction(work)


def fulfil(reservation_id: int, data: Fulfil, actor: str | None = None) -> dict:
    """Ship what a reservation holds (or part of it): an `out` movement carrying its id,
    and the hold drops by as much; nothing left held, it is `fulfilled`."""

    def work() -> dict:
        stock, reservation = _locked(reservation_id)
        quantity = reservation.quantity if data.quantity is None else data.quantity
        if quantity > reservation.quantity:
            raise Conflict("出库数量超过预留数量", {"status": reservation.status, "reserved": reservation.quantity,
                                              "requested": quantity})
        level = lock_level(stock, reservation.warehouse_id)
        change_held(stock, level, -quantity)
        movement = SimpleNamespace(quantity=quantity, expected_quantity=None, reason=data.reason or "预留出库",
                                   operator=data.operator)
        log = record_change(stock, level, "out", movement, actor, reservation_id=reservation.id)
        reservation.quantity -= quantity
        reservation.fulfilled_quantity += quantity
        if reservation.quantity == 0:
            reservation.status = "fulfilled"
        reservation.updated_at = log.created_at
        db.session.flush()
        return {"reservation": announced("fulfilled", reservation), "stock": stock, "log": log}

    return run_in_write_transaction(work)


def release(reservation_id: int) -> SimpleNamespace:
    """Give the units back to what is available; the reservation keeps the quantity it held."""

    def work() -> SimpleNamespace:
        return _release(*_locked(reservation_id))

    return run_in_write_transaction(work)


def release_all_held(product_id: int) -> None:
    """Release every active hold of a product being deleted, in its transaction: a
    deleted product promises nothing, and its holds could not be released afterwards."""
    stock = lock_stock(product_id)  # settles its past-due holds first
    if stock.reserved:
        for reservation in db.session.scalars(select(Reservation).where(
                Reservation.product_id == product_id, Reservation.status == "active").order_by(Reservation.id)):
            _release(stock, reservation)


def _release(stock: SimpleNamespace, reservation: Reservation) -> SimpleNamespace:
    change_held(stock, lock_level(stock, reservation.warehouse_id), -reservation.quantity)
    reservation.status = "released"
    reservation.updated_at = utcnow()
    db.session.flush()
    return announced("released", reservation)


def extend(reservation_id: int, data: Extend) -> SimpleNamespace:
    """Hold for `expires_in` seconds from now (sooner or later than before)."""

    def work() -> SimpleNamespace:
        _, reservation = _locked(reservation_id)
        reservation.updated_at = utcnow()
        reservation.expires_at = reservation.updated_at + timedelta(seconds=data.expires_in)
        db.session.flush()
        return reservation_shown(reservation)

    return run_in_write_transaction(work)


def _locked(reservation_id: int) -> tuple[SimpleNamespace, Reservation]:
    """The reservation's product locked (its past-due holds settled by that), and the
    reservation as it now is, which must still be active."""
    product_id = db.session.scalar(select(Reservation.product_id).where(Reservation.id == reservation_id))
    if product_id is None:
        raise NotFound("预留不存在", {"reservation_id": reservation_id})
    stock = lock_stock(product_id)
    reservation = db.session.get(Reservation, reservation_id, populate_existing=True)
    if reservation.status != "active":
        raise Conflict("该预留已不是有效状态", {"status": reservation.status, "reservation_id": reservation_id})
    return stock, reservation


def get_reservation(reservation_id: int) -> SimpleNamespace:
    row = db.session.execute(VIEW.where(Reservation.id == reservation_id)).mappings().first()
    if row is None:
        raise NotFound("预留不存在", {"reservation_id": reservation_id})
    return SimpleNamespace(**row)


def list_reservations(query: ReservationQuery) -> Page:
    """Newest first; `status` as the reservations read now (`expired` includes those
    past their time that no write has marked yet)."""
    begin_snapshot()
    filters = []
    if query.status == "expired":
        filters.append((Reservation.status == "expired") | PAST_DUE)
    elif query.status == "active":
        filters.append(and_(Reservation.status == "active", Reservation.expires_at > utc_now()))
    elif query.status:
        filters.append(Reservation.status == query.status)
    for name in ("product_id", "warehouse_id", "reference"):
        if getattr(query, name) is not None:
            filters.append(getattr(Reservation, name) == getattr(query, name))
    return paginate(select(Reservation).where(*filters), query, NEWEST_FIRST, VIEW)


def expire_all() -> int:
    """Mark every reservation past its time `expired`, a product at a time, each in a
    short transaction of its own that takes the product's lock like any write: safe to
    run while traffic flows. Returns how many it marked."""
    expired = 0
    while True:
        products = db.session.scalars(
            select(distinct(Reservation.product_id)).join(Product, Product.id == Reservation.product_id)
            .where(PAST_DUE, Product.deleted_at.is_(None)).limit(EXPIRE_BATCH)).all()
        db.session.rollback()
        marked = sum(run_in_write_transaction(lambda: _expire_product(product_id)) for product_id in products)
        if not marked:  # none left, or only holds whose product keeps no `reserved` (verify reports those)
            return expired
        expired += marked


def _expire_product(product_id: int) -> int:
    try:
        return len(lock_stock(product_id).expired)
    except NotFound:  # deleted meanwhile
        return 0

