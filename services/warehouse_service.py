"""Warehouse use cases: the list, create, edit, the default mark, and soft delete."""
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from db import db
from db.reads import PreparedRead
from models import StockLevel, Warehouse
from models.types import utcnow
from schemas.warehouse import WarehouseCreate, WarehouseQuery, WarehouseUpdate
from services import views
from services.pagination import ordering, paginate
from services.transaction import begin_snapshot, run_in_write_transaction
from utils.exceptions import Conflict, Duplicate, NotFound
from utils.pagination import Page

_LIVE = Warehouse.deleted_at.is_(None)
_WAREHOUSE_BY_ID = PreparedRead(views.WAREHOUSE.where(_LIVE, Warehouse.id == bindparam("warehouse_id")))


def list_warehouses(query: WarehouseQuery) -> Page:
    begin_snapshot()
    order = ordering(query.sort, {"id": Warehouse.id}, key=Warehouse.id)
    return paginate(select(Warehouse).where(_LIVE), query, order, views.WAREHOUSE)


def all_warehouses() -> list[SimpleNamespace]:
    """Every live warehouse, the default first: for the console's pickers (there are few)."""
    rows = db.session.execute(views.WAREHOUSE.where(_LIVE).order_by(
        func.coalesce(Warehouse.is_default, False).desc(), Warehouse.id)).mappings()
    return [views.shaped(row) for row in rows]


def get_warehouse(warehouse_id: int) -> SimpleNamespace:
    """A live warehouse as shown, with what it holds, or NotFound."""
    row = _WAREHOUSE_BY_ID.first(warehouse_id=warehouse_id)
    if row is None:
        raise NotFound("仓库不存在", {"warehouse_id": warehouse_id})
    return views.shaped(row)


def create_warehouse(data: WarehouseCreate) -> SimpleNamespace:
    def work() -> int:
        warehouse = Warehouse(code=data.code, name=data.name, address=data.address)
        db.session.add(warehouse)
        db.session.flush()
        if data.is_default:
            _move_default_mark(warehouse)
        return warehouse.id

    return _shown_after(work, data.code)


def update_warehouse(warehouse_id: int, data: WarehouseUpdate) -> SimpleNamespace:
    """Change the fields sent; `is_default: true` moves the mark here."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)

    def work() -> int:
        warehouse = _lock_live(warehouse_id)
        if changes.pop("is_default", None) is False:
            if warehouse.is_default:
                raise Conflict("必须有一个默认仓库：请把另一个仓库设为默认", {"warehouse_id": warehouse_id})
        elif "is_default" in data.model_fields_set and not warehouse.is_default:
            _move_default_mark(warehouse)
        for field, value in changes.items():
            setattr(warehouse, field, value)
        warehouse.updated_at = utcnow()
        return warehouse.id

    return _shown_after(work, changes.get("code"))


def delete_warehouse(warehouse_id: int) -> None:
    """Soft delete: the code is released, ledger rows keep theirs. The default, or one
    that holds stock of a live product, cannot go (409). The row's exclusive lock waits
    for every change into it under way (they hold a shared lock: stock_service.lock_level)."""

    def work() -> None:
        warehouse = _lock_live(warehouse_id)
        if warehouse.is_default:
            raise Conflict("默认仓库不能删除", {"warehouse_id": warehouse_id})
        held = db.session.scalar(select(func.coalesce(func.sum(StockLevel.quantity), 0)).where(
            StockLevel.warehouse_id == warehouse_id, StockLevel.deleted_at.is_(None)))
        if held:
            raise Conflict("仓库中还有库存，不能删除", {"warehouse_id": warehouse_id, "total_quantity": int(held)})
        warehouse.deleted_at = warehouse.updated_at = utcnow()
        warehouse.code = None

    run_in_write_transaction(work)


def _move_default_mark(warehouse: Warehouse) -> None:
    """Take the mark off the current default (locked first: two moves at once queue on
    it) and put it on `warehouse`; the unique index allows one mark only."""
    current = db.session.scalar(select(Warehouse).where(Warehouse.is_default.is_(True)).with_for_update())
    if current is not None:
        db.session.execute(update(Warehouse).where(Warehouse.id == current.id).values(is_default=None))
        db.session.expire(current)
    warehouse.is_default = True


def _lock_live(warehouse_id: int) -> Warehouse:
    warehouse = db.session.scalar(select(Warehouse).where(Warehouse.id == warehouse_id, _LIVE).with_for_update())
    if warehouse is None:
        raise NotFound("仓库不存在", {"warehouse_id": warehouse_id})
    return warehouse


def _shown_after(work, code: str | None) -> SimpleNamespace:
    """Run a change and answer the warehouse as shown; a code taken by another live
    warehouse (checked by its unique index, so two at once cannot both take it) is 409."""
    try:
        warehouse_id = run_in_write_transaction(work)
    except IntegrityError as exc:
        if code is not None and "code" in str(exc.orig).lower():
            raise Duplicate("仓库编码已存在", {"code": code}) from None
        raise
    return get_warehouse(warehouse_id)
