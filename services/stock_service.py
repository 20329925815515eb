"""Stock use cases. Every count change locks the stock row, updates it with a
compare-and-set in SQL and appends its hash-chained ledger row in the same transaction."""
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import groupby
from operator import attrgetter
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import BigInteger, Select, and_, bindparam, false, func, insert, literal_column, or_, select, update

from db import db
from db.prepared import PreparedStatement
from db.reads import PreparedRead
from models import (
    ACTIONS,
    GENESIS_HASH,
    HASH_VERSION,
    LEVEL_SIGN,
    Product,
    Reservation,
    Stock,
    StockLevel,
    StockLog,
    Warehouse,
    chain_hash,
    shard_of,
)
from models.stock import LOW_ROWS, is_low_level
from models.stock_level import LOW_LEVELS, PRODUCT_SORTED
from models.types import UTCDateTime, utcnow
from schemas.common import MAX_STOCK
from schemas.reservation import Hold, ReservationOut
from schemas.stock import (
    BatchOut,
    BatchReserveResultOut,
    BatchTransferResultOut,
    LowStockQuery,
    StockAdjust,
    StockBatch,
    StockChange,
    StockChangeOut,
    StockPointQuery,
    StockQuery,
    StockTransfer,
)
from services import views
from services.event_service import EventBatch, record_event
from services.ledger_service import DAILY_TOTALS, DailyTotals
from services.level_counts import LevelTally, count_level, live_levels
from services.log_service import end_of
from services.pagination import Ordering, UnshownRows, contains, count_rows, ordering, paginate
from services.product_counts import live_count
from services.transaction import begin_snapshot, run_in_write_transaction, write_connection
from utils.exceptions import (
    AppError,
    Conflict,
    InsufficientStock,
    NotFound,
    ValidationFailed,
)
from utils.pagination import Page

# The stock as shown after the change, and the ledger row it wrote (None: nothing changed).
ChangeResult = tuple[SimpleNamespace, SimpleNamespace | None]
# The actions the stock row's running totals count (a transfer changes no total).
COUNTED_ACTIONS = ("in", "out", "adjust")


SORTS = {"product_id": Stock.product_id, "name": Product.name, "sku": Product.sku, "quantity": Stock.quantity,
         "min_quantity": Stock.min_quantity, "updated_at": Stock.updated_at}
LOW_STOCK_ORDER = Ordering("shortage", (Stock.shortage.desc(), Stock.product_id.asc()))
# A product's stock and its levels in one statement: a row per level, each with the total.
_STOCK_WITH_LEVELS = PreparedRead(
    views.STOCK.add_columns(*views.within(
        "level", warehouse_id=StockLevel.warehouse_id, warehouse_code=Warehouse.code, quantity=StockLevel.quantity,
        reserved=views.LEVEL_RESERVED,
        min_quantity=StockLevel.min_quantity, max_quantity=StockLevel.max_quantity, location=StockLevel.location,
        is_low=StockLevel.is_low, warehouse_deleted_at=Warehouse.deleted_at))
    .outerjoin(StockLevel, StockLevel.product_id == Stock.product_id)
    .outerjoin(Warehouse, Warehouse.id == StockLevel.warehouse_id)
    .where(Product.deleted_at.is_(None), Stock.product_id == bindparam("product_id"))
    .order_by(StockLevel.warehouse_id))
_LIVE_WAREHOUSE = PreparedRead(
    select(Warehouse.id).where(Warehouse.id == bindparam("warehouse_id"), Warehouse.deleted_at.is_(None)))
_LEVELS_IN_WAREHOUSE = views.WAREHOUSE_STOCK.where(StockLevel.warehouse_id == bindparam("warehouse_id"))
LEVEL_SORTS = {"product_id": StockLevel.product_id, "name": StockLevel.name, "sku": StockLevel.sku,
               "quantity": StockLevel.quantity, "min_quantity": StockLevel.min_quantity,
               "updated_at": StockLevel.updated_at}
LOW_LEVEL_ORDER = Ordering("shortage", (StockLevel.shortage.desc(), StockLevel.product_id.asc()))


def list_stock(query: StockQuery) -> Page:
    """One page of stock rows of live products, with their product summary.

    Sorted by the product's name or SKU with no filter of the stock's own, the page is
    read off the products' indexes alone; otherwise off the stock rows' (which carry
    the product's deletion and lowness), joined to products only for a filter or sort
    of theirs. Low rows sorted by name or SKU are all read and sorted: they are few."""
    begin_snapshot()
    column = SORTS[query.sort.removeprefix("-")]
    by_product = column.class_ is Product
    off_products = by_product and not (query.location or query.low_only)
    product_filters = query.q or query.category or query.sku or query.barcode
    if off_products:
        statement = select(Product).where(Product.deleted_at.is_(None))
    else:
        # A deleted product is never low: the low rows are all live.
        statement = select(Stock).where(LOW_ROWS if query.low_only else Stock.deleted_at.is_(None))
        if product_filters:
            statement = statement.join(Stock.product)
    statement = _filtered(statement, query, Stock.location)
    if query.q or query.sku or query.barcode or query.location or query.low_only:
        total = count_rows(statement)
    else:  # every live product has one stock row: the products' running counts are the total
        total = live_count(query.category)
    if by_product and not (off_products or product_filters):
        statement = statement.join(Stock.product)  # for the order alone, after the count
    order = ordering(query.sort, SORTS, key=Product.id if by_product else Stock.product_id)
    return paginate(statement, query, order, views.STOCK, total=total)


def _filtered(statement: Select, query: StockQuery, location) -> Select:
    """The stock lists' filters: on the product (joined by the caller) and on `location`."""
    if query.q:
        statement = statement.where(or_(contains(Product.name, query.q), contains(Product.sku, query.q)))
    if query.category:
        statement = statement.where(Product.category == query.category)
    if query.sku:
        statement = statement.where(Product.sku == query.sku)
    if query.barcode:
        statement = statement.where(Product.barcode == query.barcode)
    if query.location:
        statement = statement.where(location == query.location)
    return statement


def list_low_stock(query: LowStockQuery) -> Page:
    """Rows at or below their minimum, largest shortage first: products' totals, or with
    `warehouse_id` that warehouse's levels. Deleted products have no minimum, so only
    the index in exactly this order is read."""
    begin_snapshot()
    if query.warehouse_id is not None:
        live_warehouse(query.warehouse_id)
        low_levels = select(StockLevel).where(StockLevel.warehouse_id == query.warehouse_id, LOW_LEVELS)
        return paginate(low_levels, query, LOW_LEVEL_ORDER, _LEVELS_IN_WAREHOUSE,
                        view_params={"warehouse_id": query.warehouse_id})
    return paginate(select(Stock).where(Stock.is_low), query, LOW_STOCK_ORDER, views.STOCK)


def live_warehouse(warehouse_id: int) -> None:
    """NotFound unless the warehouse exists and is not deleted."""
    if _LIVE_WAREHOUSE.first(warehouse_id=warehouse_id) is None:
        raise NotFound("仓库不存在", {"warehouse_id": warehouse_id})


def list_warehouse_stock(warehouse_id: int, query: StockQuery) -> Page:
    """One page of a warehouse's levels of live products, with their product summary,
    filtered and sorted as `/api/stock/` is: off the levels' indexes, which lead with the
    warehouse and hold copies of the product's name and SKU; sorted by those with a filter
    of the product's (a category, say) and none of the level's own, off the products'
    indexes, which hold that filter. With no filter the total is the warehouse's running
    count of live levels; otherwise it is counted on the levels, joined to products only
    for a filter of theirs."""
    begin_snapshot()
    live_warehouse(warehouse_id)
    here = StockLevel.warehouse_id == warehouse_id
    levels = select(StockLevel).where(here, LOW_LEVELS if query.low_only else StockLevel.deleted_at.is_(None))
    product_filters = query.q or query.category or query.sku or query.barcode
    if product_filters:
        levels = levels.join(Product, Product.id == StockLevel.product_id)
    levels = _filtered(levels, query, StockLevel.location)
    total = count_rows(levels) if product_filters or query.location or query.low_only else live_levels(warehouse_id)
    params = {"warehouse_id": warehouse_id}
    if query.sort.removeprefix("-") in PRODUCT_SORTED and product_filters and not (query.location or query.low_only):
        products = _filtered(select(Product).where(Product.deleted_at.is_(None)), query, StockLevel.location)
        order = ordering(query.sort, SORTS, key=Product.id)
        if _holds_every_product(total, query):
            try:
                return paginate(products, query, order, _LEVELS_IN_WAREHOUSE, total=total, view_params=params)
            except UnshownRows:  # the products' running count is off (an edit by hand, not yet recounted)
                pass
        # A live product's level is live too (its deletion is copied to its levels).
        statement = products.where(select(StockLevel.product_id).where(StockLevel.product_id == Product.id, here).exists())
    else:
        statement = levels
        order = ordering(query.sort, LEVEL_SORTS, key=StockLevel.product_id)
    return paginate(statement, query, order, _LEVELS_IN_WAREHOUSE, total=total, view_params=params)


def _holds_every_product(levels: int, query: StockQuery) -> bool:
    """Whether the warehouse's `levels` live levels of the category asked for are one of
    every such live product: then its list by name or SKU is the category's own, and no
    product is looked up for a level (in a warehouse holding everything, the default
    one most often, a category lists as fast as in `/api/stock/`)."""
    return not (query.q or query.sku or query.barcode) and levels == live_count(query.category)


def get_stock(product_id: int) -> SimpleNamespace:
    """A live product's stock as shown (services/views.py), with its level in each
    live warehouse that has one, or NotFound."""
    rows = [views.shaped(row) for row in _STOCK_WITH_LEVELS.all(product_id=product_id)]
    if not rows:
        raise NotFound("商品不存在", {"product_id": product_id})
    stock = rows[0]
    stock.levels = [row.level for row in rows
                    if row.level.warehouse_id is not None and row.level.warehouse_deleted_at is None]
    del stock.level
    return stock


def stock_at(product_id: int, point: StockPointQuery) -> dict:
    """The count at a past moment or ledger position (the product's total, or with
    `warehouse_id` that warehouse's level), read from one index lookup, with the
    sequence number and hash the answer stands on."""
    get_stock(product_id)
    count = StockLog.after_quantity
    filters = [StockLog.product_id == product_id]
    if point.warehouse_id is not None:
        live_warehouse(point.warehouse_id)
        count = StockLog.level_after
        filters.append(StockLog.warehouse_id == point.warehouse_id)
    entries = select(StockLog.seq, StockLog.hash, count.label("quantity")).where(*filters)
    newest = (StockLog.created_at.desc(), StockLog.seq.desc())
    if point.as_of_seq is not None:
        answer = {"as_of_seq": point.as_of_seq}
        exists = db.session.scalar(select(StockLog.id).where(
            StockLog.product_id == product_id, StockLog.seq == point.as_of_seq))
        if exists is None and point.as_of_seq > 0:
            raise NotFound("该序号的流水不存在", {"as_of_seq": point.as_of_seq})
        reached = StockLog.seq <= point.as_of_seq
        newest = (StockLog.seq.desc(),)
    else:
        answer = {"as_of": point.as_of}
        moment = point.as_of
        reached = StockLog.created_at <= moment if isinstance(moment, datetime) else StockLog.created_at < end_of(moment)
    entry = db.session.execute(entries.where(reached).order_by(*newest).limit(1)).first()
    where = {} if point.warehouse_id is None else {"warehouse_id": point.warehouse_id}
    if entry is None:
        return {"product_id": product_id, **where, "quantity": 0, **answer, "seq": 0, "hash": GENESIS_HASH}
    return {"product_id": product_id, **where, "quantity": entry.quantity, **answer, "seq": entry.seq,
            "hash": entry.hash}


def add_stock(data: StockChange, actor: str | None = None) -> ChangeResult:
    """Receive `quantity` units into a warehouse (logged as `in`)."""
    return _change(data, lambda stock, level: record_change(stock, level, "in", data, actor))


def reduce_stock(data: StockChange, actor: str | None = None) -> ChangeResult:
    """Issue `quantity` units from a warehouse (logged as `out`); its level never below zero."""
    return _change(data, lambda stock, level: record_change(stock, level, "out", data, actor))


def adjust_stock(data: StockAdjust, actor: str | None = None) -> ChangeResult:
    """Set a level to the counted quantity and optionally thresholds (the level's own when
    a warehouse is named, else the product's); an unchanged count is not logged."""
    settings = data.model_dump(include={"min_quantity", "max_quantity", "location"}, exclude_unset=True)

    def apply(stock: SimpleNamespace, level: SimpleNamespace) -> SimpleNamespace | None:
        if settings:
            _change_settings(stock, settings, level if data.warehouse_id is not None else None)
        return record_change(stock, level, "adjust", data, actor)

    return _change(data, apply)


def transfer_stock(data: StockTransfer, actor: str | None = None) -> dict:
    """Move units between two warehouses: two ledger rows sharing a `transfer_id`, in one
    transaction; the product's total stays."""

    def work() -> dict:
        stock = lock_stock(data.product_id)
        return _transfer(stock, lock_levels(stock, (data.from_warehouse_id, data.to_warehouse_id)), data, actor)

    return run_in_write_transaction(work, session_free=True)


def _transfer(stock: SimpleNamespace, levels: dict[int, SimpleNamespace], data: StockTransfer,
              actor: str | None, daily: DailyTotals | None = None) -> dict:
    source, destination = levels[data.from_warehouse_id], levels[data.to_warehouse_id]
    transfer_id = uuid.uuid4().hex
    logs = [record_change(stock, source, "transfer_out", data, actor, transfer_id, daily),
            record_change(stock, destination, "transfer_in", data, actor, transfer_id, daily)]
    return {"transfer_id": transfer_id, "from": source, "to": destination, "logs": logs}


def _change_settings(stock: SimpleNamespace, settings: dict, level: SimpleNamespace | None = None) -> None:
    """New thresholds or location on a locked stock row, or on one of its levels. The
    product's are editable with PUT too, so its version (its ETag) is bumped: an edit
    based on the old settings then gets 412 instead of undoing this."""
    target = stock if level is None else level
    was_low = target.is_low
    vars(target).update(settings)
    check_thresholds(target)
    target.updated_at = utcnow()
    connection = write_connection()
    if level is not None:
        connection.execute(update(StockLevel).where(
            StockLevel.product_id == stock.product_id, StockLevel.warehouse_id == level.warehouse_id).values(
            **settings, updated_at=level.updated_at))
    else:
        connection.execute(update(Stock).where(Stock.product_id == stock.product_id).values(
            **settings, updated_at=stock.updated_at))
        connection.execute(_BUMP_PRODUCT_VERSION, {"product": stock.product_id, "now": stock.updated_at})
    target.is_low = is_low_level(target.quantity, target.min_quantity)
    announce_low(stock, was_low, level=level)


def announce_low(stock, was_low: bool, record: Callable = record_event, level: SimpleNamespace | None = None) -> None:
    """A `stock.low` event when a change made the product low, or, given `level`, made that
    level low against its own minimum (not on every change while it stays low); by
    `record` (an `EventBatch`'s `add` in bulk changes)."""
    shown = stock if level is None else level
    if shown.is_low and not was_low:
        warehouse_id = None if level is None else level.warehouse_id
        record("stock.low", {
            "product_id": stock.product_id, "sku": stock.product.sku, "name": stock.product.name,
            "quantity": shown.quantity, "min_quantity": shown.min_quantity, "warehouse_id": warehouse_id,
        }, product_id=stock.product_id, warehouse_id=warehouse_id)


BATCH_ACTIONS = {"add": "in", "reduce": "out", "adjust": "adjust"}


def apply_batch(batch: StockBatch, actor: str | None = None) -> BatchOut:
    """All changes in one transaction, or none. Rows are locked in one order, products
    by id and then each product's levels by warehouse id, so two batches (or a batch
    and a transfer) over the same rows can never wait on each other in a cycle.
    A dry run does everything, answers, and rolls back."""

    def work() -> BatchOut:
        stocks: dict[int, SimpleNamespace] = {}
        for product_id in sorted({change.product_id for change in batch.changes}):
            first = next(i for i, change in enumerate(batch.changes) if change.product_id == product_id)
            stocks[product_id] = _at_index(first, lambda: lock_stock(product_id))
        created = LevelTally()
        levels = _lock_batch_levels(stocks, batch.changes, created)
        results, daily = [], DailyTotals()
        for index, change in enumerate(batch.changes):
            stock = stocks[change.product_id]
            result = _at_index(index, lambda: _batch_step(stock, levels[change.product_id], change, actor, daily))
            if batch.dry_run:
                _without_ids(result)
            results.append(result)
        created.write(db.session.connection())
        daily.write(db.session.connection())
        return BatchOut(results=results, dry_run=batch.dry_run)

    return run_in_write_transaction(work, commit=not batch.dry_run)


def _lock_batch_levels(stocks: dict[int, SimpleNamespace], changes: list,
                       created: LevelTally) -> dict[int, dict[int, SimpleNamespace]]:
    """Every level the batch changes, locked per product by warehouse id (a change that
    names no warehouse: the default one's); an unknown warehouse names its first change.
    Levels made here are added to `created`, for the caller to count."""
    default = default_warehouse_id() if any(
        getattr(change, "warehouse_id", 0) is None for change in changes) else None
    first_use: dict[tuple[int, int], int] = {}
    for index, change in enumerate(changes):
        if change.action == "transfer":
            named = (change.from_warehouse_id, change.to_warehouse_id)
        else:
            named = (default if change.warehouse_id is None else change.warehouse_id,)
        for warehouse_id in named:
            first_use.setdefault((change.product_id, warehouse_id), index)
    levels: dict[int, dict[int, SimpleNamespace]] = {product_id: {} for product_id in stocks}
    for (product_id, warehouse_id), index in sorted(first_use.items()):
        levels[product_id][warehouse_id] = _at_index(index, lambda: lock_level(stocks[product_id], warehouse_id, created))
    return levels


def _batch_step(stock: SimpleNamespace, levels: dict[int, SimpleNamespace], change,
                actor: str | None, daily: DailyTotals) -> StockChangeOut:
    if change.action == "transfer":
        transfer = _transfer(stock, levels, change, actor, daily)
        return BatchTransferResultOut.model_validate({"stock": stock, "log": transfer["logs"][0], "transfer": transfer})
    level = levels[change.warehouse_id] if change.warehouse_id is not None else next(
        level for level in levels.values() if level.is_default)
    if change.action == "reserve":
        reservation = hold(stock, level, change, actor)
        return BatchReserveResultOut.model_validate({"stock": stock, "log": None, "reservation": reservation})
    log = record_change(stock, level, BATCH_ACTIONS[change.action], change, actor, daily=daily)
    return StockChangeOut.model_validate({"stock": stock, "log": log})


def _without_ids(result: StockChangeOut) -> None:
    """A dry run's ledger rows were never kept: they have no ids."""
    transferred = result.transfer.logs if isinstance(result, BatchTransferResultOut) else []
    if isinstance(result, BatchReserveResultOut):
        result.reservation.id = None
    for log in [result.log, *transferred]:
        if log is not None:
            log.id = None


def _at_index(index: int, step: Callable):
    """Run one batch step; an error names the change it came from."""
    try:
        return step()
    except AppError as exc:
        exc.details = {"index": index, **exc.details}
        raise


def _change(movement: StockChange | StockAdjust, apply: Callable) -> ChangeResult:
    def work() -> ChangeResult:
        stock = lock_stock(movement.product_id)
        level = lock_level(stock, movement.warehouse_id)
        return stock, apply(stock, level)

    return run_in_write_transaction(work, session_free=True)


def lock_stock(product_id: int) -> SimpleNamespace:
    """The live product's stock row as shown (with the product's SKU and name), locked
    until commit (FOR UPDATE; SQLite holds the database write lock already)."""
    rows = _LOCK_STOCK.run(write_connection(), product_id=product_id).rows
    if not rows:
        raise NotFound("商品不存在", {"product_id": product_id})
    stock = views.shaped(rows[0])
    stock.expired = expire_past_due(stock) if stock.reserved else []
    return stock


def expire_past_due(stock: SimpleNamespace) -> list[dict]:
    """Mark the locked product's active reservations that are past their time `expired`
    and take what they held off its levels and its total (the reads have left them out
    since that instant). Every write of the product locks it first, so each one counts
    only holds that are still in time. Returns the reservations expired."""
    connection = write_connection()
    now = utcnow()
    past_due = _PAST_DUE.run(connection, product_id=stock.product_id, now=now).rows
    if not past_due:
        return []
    _EXPIRE.run(connection, product_id=stock.product_id, now=now)
    for reservation in past_due:
        announced("expired", SimpleNamespace(**{**reservation, "status": "expired", "updated_at": now}))
    held: dict[int, int] = {}
    for reservation in past_due:
        held[reservation["warehouse_id"]] = held.get(reservation["warehouse_id"], 0) + reservation["quantity"]
    for warehouse_id, quantity in sorted(held.items()):
        _HOLD_IN_LEVEL.run(connection, product_id=stock.product_id, warehouse_id=warehouse_id, delta=-quantity,
                           now=now)
    _HOLD_IN_STOCK.run(connection, product_id=stock.product_id, delta=-sum(held.values()), now=now)
    stock.reserved -= sum(held.values())
    return past_due


def change_held(stock: SimpleNamespace, level: SimpleNamespace, delta: int) -> None:
    """Add `delta` to what a locked level, and its product's total, hold."""
    connection, now = write_connection(), utcnow()
    _HOLD_IN_LEVEL.run(connection, product_id=stock.product_id, warehouse_id=level.warehouse_id, delta=delta, now=now)
    _HOLD_IN_STOCK.run(connection, product_id=stock.product_id, delta=delta, now=now)
    stock.reserved += delta
    level.reserved += delta


def hold(stock: SimpleNamespace, level: SimpleNamespace, data: Hold, actor: str | None) -> SimpleNamespace:
    """Reserve `data.quantity` units of a locked level, out of what it has available."""
    if data.quantity > level.quantity - level.reserved:
        raise insufficient(stock, level, data.quantity)
    now = utcnow()
    reservation = Reservation(
        product_id=stock.product_id, warehouse_id=level.warehouse_id, quantity=data.quantity, fulfilled_quantity=0,
        reference=data.reference, status="active", operator=actor or data.operator, created_at=now, updated_at=now,
        expires_at=now + timedelta(seconds=data.expires_in or current_app.config["RESERVATION_TTL_SECONDS"]))
    db.session.add(reservation)
    db.session.flush()
    change_held(stock, level, data.quantity)
    return announced("created", reservation)


def reservation_shown(reservation) -> SimpleNamespace:
    """A reservation as its answer shows it, detached from the session."""
    return SimpleNamespace(**{column.key: getattr(reservation, column.key)
                              for column in Reservation.__table__.columns})


def announced(kind: str, reservation) -> SimpleNamespace:
    """The reservation as shown, its `reservation.<kind>` event recorded in the same transaction."""
    shown = reservation_shown(reservation)
    record_event(f"reservation.{kind}", ReservationOut.model_validate(shown).model_dump(mode="json"),
                 product_id=shown.product_id, warehouse_id=shown.warehouse_id)
    return shown


def insufficient(stock: SimpleNamespace, level: SimpleNamespace, requested: int) -> InsufficientStock:
    """The refusal of a request for more than a level has available."""
    return InsufficientStock(details={"product_id": stock.product_id, "warehouse_id": level.warehouse_id,
                                      "available": max(level.quantity - level.reserved, 0), "requested": requested})


def lock_level(stock: SimpleNamespace, warehouse_id: int | None, created: LevelTally | None = None) -> SimpleNamespace:
    """The product's level in a live warehouse (None: the default one), created empty when
    the product has none there yet, and counted (`level_counts`) at once or, given
    `created`, by the caller that locks several. Call it with the product's stock row
    locked: every change of a level holds that lock first, so a level is never changed
    by two at once. The warehouse row gets a shared lock (none on SQLite, which has the
    write lock), so it cannot be deleted while a change into it is under way."""
    connection = write_connection()
    if warehouse_id is None:
        rows = _LEVEL_IN_DEFAULT.run(connection, product_id=stock.product_id).rows
    else:
        rows = _LEVEL_IN.run(connection, product_id=stock.product_id, warehouse_id=warehouse_id).rows
    if not rows:
        raise NotFound("仓库不存在", {"warehouse_id": warehouse_id})
    level = SimpleNamespace(product_id=stock.product_id, **rows[0])
    if level.quantity is None:
        level.updated_at = utcnow()
        _INSERT_LEVEL.run(connection, product_id=stock.product_id, warehouse_id=level.warehouse_id,
                          name=stock.product.name, sku=stock.product.sku, now=level.updated_at)
        if created is None:
            count_level(connection, stock.product_id, level.warehouse_id)
        else:
            created.add(stock.product_id, level.warehouse_id)
        level.quantity, level.reserved, level.min_quantity, level.max_quantity, level.location = 0, 0, 0, None, None
    level.is_low = is_low_level(level.quantity, level.min_quantity)
    return level


def lock_levels(stock: SimpleNamespace, warehouse_ids) -> dict[int, SimpleNamespace]:
    """Several levels of one product, locked in warehouse-id order."""
    return {warehouse_id: lock_level(stock, warehouse_id) for warehouse_id in sorted(set(warehouse_ids))}


def default_warehouse_id() -> int:
    return db.session.scalar(select(Warehouse.id).where(Warehouse.is_default.is_(True)))


def check_thresholds(stock) -> None:
    """A change that leaves the maximum below the minimum: the request's own values are in
    order (its schema checks that), so it is the values kept from before that it conflicts with."""
    if stock.max_quantity is not None and stock.max_quantity < (stock.min_quantity or 0):
        raise Conflict("最大库存不能小于最小库存",
                       {"min_quantity": stock.min_quantity, "max_quantity": stock.max_quantity})


def check_expected(stock: SimpleNamespace, level: SimpleNamespace, movement) -> None:
    """The compare-and-set a client asks for with `expected_quantity`: the level as it is now."""
    if movement.expected_quantity is not None and movement.expected_quantity != level.quantity:
        raise Conflict("当前库存与 expected_quantity 不符", {
            "product_id": stock.product_id, "warehouse_id": level.warehouse_id,
            "expected_quantity": movement.expected_quantity, "current_quantity": level.quantity})


def check_limit(total: int, level: int) -> None:
    if max(total, level) > MAX_STOCK:
        raise ValidationFailed("库存数量超出上限", {"quantity": f"结果库存不能超过 {MAX_STOCK}"})


def record_change(stock: SimpleNamespace, level: SimpleNamespace, action: str, movement,
                  actor: str | None = None, transfer_id: str | None = None,
                  daily: DailyTotals | None = None, reservation_id: int | None = None) -> SimpleNamespace | None:
    """Apply one movement to a locked level and its product's total (from `lock_level`
    and `lock_stock`, both kept up to date here) and append its ledger row and its
    `stock.changed` event (and `stock.low` when it made the product low); the log row
    is returned. The movement is added to its day's totals at once, or to `daily` for
    the caller to write.

    `actor` is the API key's name when the request carried one: it becomes the
    log's `operator`, and the client's own `operator` is kept as `on_behalf_of`.

    Units leave a level (`out`, `transfer_out`) only from what is available, not held
    by reservations; the `out` row that fulfils a reservation (`reservation_id`, whose
    hold the caller has just taken off) only needs them on hand.

    `movement.quantity` is the units moved, and for `adjust` the level's new count
    (an adjust to the current count writes nothing and returns None). The total moves
    by as much as the level, except in a transfer's two rows (`transfer_id`). Both
    UPDATEs only match while their rows still hold the counts read under the lock,
    so a change can never be applied on top of a stale value. Statements are built
    once and run on the transaction's connection: this is the hottest write.
    """
    level_before = level.quantity
    amount = movement.quantity
    if action != "transfer_in":  # a transfer's expectation is about its source, its transfer_out row
        check_expected(stock, level, movement)
    level_after = amount if action == "adjust" else level_before + LEVEL_SIGN[action] * amount
    if level_after == level_before:  # only an adjust to the count already there
        return None
    if level_after < 0 or (LEVEL_SIGN[action] < 0 and reservation_id is None and level_after < level.reserved):
        raise insufficient(stock, level, amount)
    logged = level_after - level_before if action == "adjust" else amount
    before = stock.quantity
    after = before if transfer_id else before + level_after - level_before
    check_limit(after, level_after)
    now = utcnow()
    connection = write_connection()
    changed = _UPDATE_LEVEL.run(connection, product_id=stock.product_id, warehouse_id=level.warehouse_id,
                                before=level_before, after=level_after, now=now)
    if changed.rowcount == 1:
        changed = _UPDATE_COUNT.run(
            connection, stock_of=stock.product_id, before=before, after=after, now=now,
            **{f"{name}_delta": logged if action == name else 0 for name in COUNTED_ACTIONS},
            moved=0 if transfer_id else abs(logged),
        )
    if changed.rowcount != 1:
        raise Conflict("库存已被并发修改，请重试", {"product_id": stock.product_id})
    was_low, level_was_low = stock.is_low, level.is_low
    stock.quantity, stock.updated_at, stock.is_low = after, now, is_low_level(after, stock.min_quantity)
    level.quantity, level.updated_at, level.is_low = level_after, now, is_low_level(level_after, level.min_quantity)
    last = _LAST_LOG.run(connection, product_id=stock.product_id).rows
    log = _ledger_row(last[0] if last else None, stock, level, action, logged, (before, after),
                      (level_before, level_after), movement, actor, now, transfer_id, reservation_id)
    log.id = _INSERT_LOG.run(connection, **vars(log)).lastrowid
    record_event("stock.changed", logged_row(log), product_id=stock.product_id, warehouse_id=level.warehouse_id,
                 occurred_at=now)
    announce_low(stock, was_low)
    announce_low(stock, level_was_low, level=level)
    if daily is not None:
        daily.add(stock.product_id, log.created_at.date(), action, logged, log.id)
        return log
    DAILY_TOTALS.run(
        connection, day=log.created_at.date(), shard=shard_of(stock.product_id),
        **{f"{name}_movements": int(action == name) for name in ACTIONS},
        **{f"{name}_quantity": logged if action == name else 0 for name in ACTIONS},
        first_id=log.id, last_id=log.id,
    )
    return log


COUNT_CHUNK = 100  # products per round of statements in `record_counts`


def record_counts(adjusts: list[StockAdjust], actor: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> int:
    """Many stocktake counts, each an `adjust` of its level written as `record_change`
    writes one (the same ledger rows, hashes, running totals and events), for products
    whose stock rows the caller's transaction holds locked. One round of statements per
    chunk of products instead of eight per count: on MySQL/MariaDB each statement is a
    network round trip, and a 50,000-row import counted one by one outlasts a request.
    Levels and stock rows are updated with a compare-and-set on the counts read here,
    as `record_change` does. Answers how many counts changed a level."""
    ordered = sorted(adjusts, key=attrgetter("product_id", "warehouse_id"))
    codes = _warehouse_codes({adjust.warehouse_id for adjust in ordered})
    by_product = [(product_id, list(group)) for product_id, group in groupby(ordered, attrgetter("product_id"))]
    daily, created, changed, done = DailyTotals(), LevelTally(), 0, 0
    for start in range(0, len(by_product), COUNT_CHUNK):
        chunk = by_product[start:start + COUNT_CHUNK]
        changed += _count_chunk(chunk, codes, actor, daily, created)
        done += sum(len(group) for _, group in chunk)
        if progress is not None:
            progress(done, len(ordered))
    created.write(db.session.connection())
    daily.write(db.session.connection())
    return changed


def _warehouse_codes(warehouse_ids: set[int]) -> dict[int, str]:
    """The live warehouses counted into, share-locked as `lock_level` locks each one."""
    codes = dict(db.session.execute(select(Warehouse.id, Warehouse.code).where(
        Warehouse.id.in_(warehouse_ids), Warehouse.deleted_at.is_(None)).with_for_update(read=True)).all())
    missing = sorted(warehouse_ids - codes.keys())
    if missing:
        raise NotFound("仓库不存在", {"warehouse_id": missing[0]})
    return codes


def _count_chunk(chunk: list[tuple[int, list[StockAdjust]]], codes: dict[int, str], actor: str | None,
                 daily: DailyTotals, created: LevelTally) -> int:
    connection, now = db.session.connection(), utcnow()
    ids = [product_id for product_id, _ in chunk]
    stocks = {row["product_id"]: views.shaped(row) for row in connection.execute(
        views.STORED_STOCK.where(Product.deleted_at.is_(None), Stock.product_id.in_(ids))
        .order_by(Stock.product_id).with_for_update()).mappings()}
    levels, minimums = {}, {}
    for row in connection.execute(select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.quantity,
                                         StockLevel.min_quantity).where(StockLevel.product_id.in_(ids))):
        levels[(row.product_id, row.warehouse_id)] = row.quantity
        minimums[(row.product_id, row.warehouse_id)] = row.min_quantity
    previous = _last_rows(connection, ids)
    counted: dict[tuple[int, int], int] = {}  # level → its count; the level's count read is in `levels`
    totals: dict[int, int] = {}  # product → its total as read
    logs, events, lows = [], EventBatch(), EventBatch()  # each product's stock.low after its stock.changed
    for product_id, group in chunk:
        stock = stocks.get(product_id)
        if stock is None:
            raise NotFound("商品不存在", {"product_id": product_id})
        if stock.reserved:
            expire_past_due(stock)
        was_low = stock.is_low
        for adjust in group:
            key = (product_id, adjust.warehouse_id)
            level = SimpleNamespace(warehouse_id=adjust.warehouse_id, warehouse_code=codes[adjust.warehouse_id],
                                    quantity=counted.get(key, levels.get(key, 0)), min_quantity=minimums.get(key, 0))
            check_expected(stock, level, adjust)
            if adjust.quantity == level.quantity:
                continue
            after = stock.quantity + adjust.quantity - level.quantity
            check_limit(after, adjust.quantity)
            log = _ledger_row(previous.get(product_id), stock, level, "adjust", adjust.quantity - level.quantity,
                              (stock.quantity, after), (level.quantity, adjust.quantity), adjust, actor, now)
            previous[product_id] = vars(log)
            logs.append(log)
            totals.setdefault(product_id, stock.quantity)
            counted[key], stock.quantity = adjust.quantity, after
            level_was_low, level.quantity = is_low_level(level.quantity, level.min_quantity), adjust.quantity
            level.is_low = is_low_level(level.quantity, level.min_quantity)
            announce_low(stock, level_was_low, lows.add, level)
        stock.is_low = is_low_level(stock.quantity, stock.min_quantity)
        announce_low(stock, was_low, lows.add)
    if not logs:
        return 0
    _write_counts(connection, now, stocks, levels, counted, totals, logs, created)
    for log in logs:
        daily.add(log.product_id, log.created_at.date(), "adjust", log.quantity, log.id)
    for log in logs:
        events.add("stock.changed", logged_row(log), product_id=log.product_id, warehouse_id=log.warehouse_id,
                   occurred_at=now)
    events.write()
    lows.write()
    return len(logs)


def _last_rows(connection, ids: list[int]) -> dict[int, dict]:
    """Each product's last ledger row (seq, hash, created_at): what its next row chains to."""
    last = (select(StockLog.product_id, func.max(StockLog.seq).label("seq"))
            .where(StockLog.product_id.in_(ids)).group_by(StockLog.product_id).subquery())
    rows = connection.execute(select(StockLog.product_id, StockLog.seq, StockLog.hash, StockLog.created_at).join(
        last, and_(StockLog.product_id == last.c.product_id, StockLog.seq == last.c.seq))).mappings()
    return {row["product_id"]: dict(row) for row in rows}


def _write_counts(connection, now, stocks: dict, levels: dict, counted: dict, totals: dict, logs: list,
                  created: LevelTally) -> None:
    """The counted levels (new ones inserted with their count, and added to `created`),
    the products' totals and running sums, and the ledger rows, whose ids the events carry."""
    new = [key for key in counted if key not in levels]
    if new:
        connection.execute(insert(StockLevel), [
            {"product_id": product_id, "warehouse_id": warehouse_id, "name": stocks[product_id].product.name,
             "sku": stocks[product_id].product.sku, "quantity": counted[(product_id, warehouse_id)], "reserved": 0,
             "min_quantity": 0, "updated_at": now} for product_id, warehouse_id in new])
        for product_id, warehouse_id in new:
            created.add(product_id, warehouse_id)
    for warehouse_id in sorted({warehouse for _, warehouse in counted}):
        kept = {product: counted[(product, warehouse)] for product, warehouse in counted
                if warehouse == warehouse_id and (product, warehouse) in levels}
        if kept:
            _compare_and_set(connection, StockLevel, kept, {key[0]: levels[key] for key in levels
                                                            if key[1] == warehouse_id and key[0] in kept},
                             StockLevel.warehouse_id == warehouse_id, updated_at=now)
    net: dict[int, int] = {}
    moved: dict[int, int] = {}
    entries: dict[int, int] = {}
    for log in logs:
        net[log.product_id] = net.get(log.product_id, 0) + log.quantity
        moved[log.product_id] = moved.get(log.product_id, 0) + abs(log.quantity)
        entries[log.product_id] = entries.get(log.product_id, 0) + 1
    _compare_and_set(connection, Stock, {product: stocks[product].quantity for product in totals}, totals, updated_at=now,
                     movements=Stock.movements + _by_product(Stock, entries),
                     adjust_net=Stock.adjust_net + _by_product(Stock, net),
                     units_moved=Stock.units_moved + _by_product(Stock, moved))
    connection.execute(insert(StockLog), [vars(log) for log in logs])
    first_seq: dict[int, int] = {}
    for log in logs:
        first_seq.setdefault(log.product_id, log.seq)
    ids = connection.execute(select(StockLog.product_id, StockLog.seq, StockLog.id).where(or_(
        *(and_(StockLog.product_id == product_id, StockLog.seq >= seq) for product_id, seq in first_seq.items()))))
    id_of = {(product_id, seq): log_id for product_id, seq, log_id in ids}
    for log in logs:
        log.id = id_of[(log.product_id, log.seq)]


def _compare_and_set(connection, model, after: dict[int, int], before: dict[int, int], *where, **values) -> None:
    """Set `quantity` of each product's row in `model` to its value in `after`, only where
    it still holds its value in `before`, in one UPDATE; any row that moved meanwhile is a
    409, as in `record_change`."""
    changed = connection.execute(
        update(model).where(model.product_id.in_(after), model.quantity == _by_product(model, before), *where)
        .values(quantity=_by_product(model, after), **values))
    if changed.rowcount != len(after):
        raise Conflict("库存已被并发修改，请重试", {"product_ids": sorted(after)})


def _by_product(model, values: dict[int, int]):
    """`CASE product_id WHEN … THEN … END` over integers the service computed, written into
    the SQL: binding (and converting) two parameters per product costs more than the UPDATE."""
    whens = " ".join(f"WHEN {int(product)} THEN {int(value)}" for product, value in values.items())
    return literal_column(f"CASE {model.__tablename__}.product_id {whens} END", BigInteger)


def logged_row(log: SimpleNamespace) -> dict:
    """A ledger row as `/api/logs` shows it (schemas.log.LogOut), built directly: this is
    the write path, and validating the row through the response model costs ~4 % of it."""
    return {"id": log.id, "product_id": log.product_id, "seq": log.seq, "action": log.action,
            "quantity": log.quantity, "before_quantity": log.before_quantity, "after_quantity": log.after_quantity,
            "reason": log.reason, "operator": log.operator, "on_behalf_of": log.on_behalf_of, "sku": log.sku,
            "name": log.product_name, "created_at": log.created_at, "prev_hash": log.prev_hash, "hash": log.hash,
            "warehouse_id": log.warehouse_id, "warehouse_code": log.warehouse_code, "level_before": log.level_before,
            "level_after": log.level_after, "transfer_id": log.transfer_id, "reservation_id": log.reservation_id}


def _who(movement, actor: str | None) -> tuple[str | None, str | None]:
    """(operator, on_behalf_of): a key's name cannot be overridden by the client."""
    if actor is None:
        return movement.operator, None
    return actor, movement.operator if movement.operator != actor else None


def _ledger_row(previous: dict | None, stock: SimpleNamespace, level: SimpleNamespace, action: str, quantity: int,
                totals: tuple[int, int], levels: tuple[int, int], movement, actor: str | None, now,
                transfer_id: str | None = None, reservation_id: int | None = None) -> SimpleNamespace:
    """The product's next ledger row (across its warehouses), hashed and chained to
    `previous` (its last row's seq, hash and created_at; None for its first), for the
    caller to insert. `totals` and `levels` are the product's and the level's counts
    (before, after). Its time never goes back within a product, so `as_of` and
    sequence order agree."""
    operator, on_behalf_of = _who(movement, actor)
    log = SimpleNamespace(
        product_id=stock.product_id,
        seq=previous["seq"] + 1 if previous else 1,
        action=action,
        quantity=quantity,
        before_quantity=totals[0],
        after_quantity=totals[1],
        reason=movement.reason,
        operator=operator,
        on_behalf_of=on_behalf_of,
        sku=stock.product.sku,
        product_name=stock.product.name,
        created_at=max(now, previous["created_at"]) if previous else now,
        prev_hash=previous["hash"] if previous else GENESIS_HASH,
        warehouse_id=level.warehouse_id,
        warehouse_code=level.warehouse_code,
        level_before=levels[0],
        level_after=levels[1],
        transfer_id=transfer_id,
        reservation_id=reservation_id,
        hash_version=HASH_VERSION,
    )
    log.hash = chain_hash(log)
    return log


# Statements of the write path, compiled once per database and run on the transaction's connection.
_LOCK_STOCK = PreparedStatement(
    views.STORED_STOCK.where(Product.deleted_at.is_(None), Stock.product_id == bindparam("product_id")).with_for_update())
_UPDATE_COUNT = PreparedStatement(
    update(Stock)
    .where(Stock.product_id == bindparam("stock_of"), Stock.quantity == bindparam("before"))
    .values(
        quantity=bindparam("after"),
        updated_at=bindparam("now"),
        movements=Stock.movements + 1,
        total_in=Stock.total_in + bindparam("in_delta"),
        total_out=Stock.total_out + bindparam("out_delta"),
        adjust_net=Stock.adjust_net + bindparam("adjust_delta"),
        units_moved=Stock.units_moved + bindparam("moved"),
    )
)
_LEVEL_OF = (
    select(Warehouse.id.label("warehouse_id"), Warehouse.code.label("warehouse_code"),
           func.coalesce(Warehouse.is_default, false()).label("is_default"), StockLevel.quantity, StockLevel.reserved,
           StockLevel.min_quantity, StockLevel.max_quantity, StockLevel.location)
    .select_from(Warehouse)
    .outerjoin(StockLevel, and_(StockLevel.warehouse_id == Warehouse.id,
                                StockLevel.product_id == bindparam("product_id")))
    .where(Warehouse.deleted_at.is_(None))
)
_LEVEL_IN = PreparedStatement(_LEVEL_OF.where(Warehouse.id == bindparam("warehouse_id")).with_for_update(read=True))
_LEVEL_IN_DEFAULT = PreparedStatement(_LEVEL_OF.where(Warehouse.is_default.is_(True)).with_for_update(read=True))
_INSERT_LEVEL = PreparedStatement(insert(StockLevel).values(
    product_id=bindparam("product_id"), warehouse_id=bindparam("warehouse_id"), name=bindparam("name"),
    sku=bindparam("sku"), quantity=0, reserved=0, min_quantity=0, updated_at=bindparam("now")))
_UPDATE_LEVEL = PreparedStatement(
    update(StockLevel)
    .where(StockLevel.product_id == bindparam("product_id"), StockLevel.warehouse_id == bindparam("warehouse_id"),
           StockLevel.quantity == bindparam("before"))
    .values(quantity=bindparam("after"), updated_at=bindparam("now"))
)
_BUMP_PRODUCT_VERSION = (
    update(Product).where(Product.id == bindparam("product"))
    .values(updated_at=bindparam("now"), version=Product.version + 1)
)
_LAST_LOG = PreparedStatement(
    select(StockLog.seq, StockLog.hash, StockLog.created_at)
    .where(StockLog.product_id == bindparam("product_id"))
    .order_by(StockLog.seq.desc())
    .limit(1)
)
_PAST_DUE = PreparedStatement(
    select(Reservation)
    .where(Reservation.product_id == bindparam("product_id"), Reservation.status == "active",
           Reservation.expires_at <= bindparam("now", type_=UTCDateTime))
    .order_by(Reservation.id))
_EXPIRE = PreparedStatement(
    update(Reservation)
    .where(Reservation.product_id == bindparam("product_id"), Reservation.status == "active",
           Reservation.expires_at <= bindparam("now", type_=UTCDateTime))
    .values(status="expired", updated_at=bindparam("now", type_=UTCDateTime)))
_HOLD_IN_LEVEL = PreparedStatement(
    update(StockLevel)
    .where(StockLevel.product_id == bindparam("product_id"), StockLevel.warehouse_id == bindparam("warehouse_id"))
    .values(reserved=StockLevel.reserved + bindparam("delta"), updated_at=bindparam("now")))
_HOLD_IN_STOCK = PreparedStatement(
    update(Stock).where(Stock.product_id == bindparam("product_id"))
    .values(reserved=Stock.reserved + bindparam("delta"), updated_at=bindparam("now")))
_INSERT_LOG = PreparedStatement(insert(StockLog).values(
    {column.key: bindparam(column.key) for column in StockLog.__table__.columns if column.key != "id"}))
