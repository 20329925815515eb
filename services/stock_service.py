"""Stock use cases. Every count change locks the stock row, updates it with a
compare-and-set in SQL and writes its ledger row in the same transaction."""
from sqlalchemy import or_, select, update

from database import db
from models import Product, Stock, StockLog
from models.types import utcnow
from schemas.stock import StockAdjust, StockChange, StockQuery
from services.pagination import like_pattern, paginate
from services.transaction import run_in_write_transaction
from utils.exceptions import Conflict, InsufficientStock, NotFound, ValidationFailed
from utils.pagination import Page

# Far above any real count, far below the 64-bit column limit.
MAX_STOCK = 10**15


def _live_stock():
    return select(Stock).join(Stock.product).where(Product.deleted_at.is_(None))


def list_stock(query: StockQuery) -> Page:
    """One page of stock rows of live products, with their product summary."""
    statement = _live_stock()
    if query.q:
        pattern = like_pattern(query.q)
        statement = statement.where(or_(Product.name.like(pattern), Product.sku.like(pattern)))
    if query.category:
        statement = statement.where(Product.category == query.category)
    if query.location:
        statement = statement.where(Stock.location == query.location)
    if query.low_only:
        statement = statement.where(Stock.is_low)
    key = query.sort.lstrip("-")
    column = {"name": Product.name, "sku": Product.sku}.get(key) or getattr(Stock, key)
    descending = query.sort.startswith("-")
    statement = statement.order_by(
        column.desc() if descending else column.asc(),
        Stock.product_id.desc() if descending else Stock.product_id,
    )
    return paginate(statement, query.page, query.per_page)


def list_low_stock(page: int, per_page: int) -> Page:
    """Rows at or below their minimum, largest shortage first."""
    statement = _live_stock().where(Stock.is_low).order_by(
        (Stock.min_quantity - Stock.quantity).desc(), Stock.product_id
    )
    return paginate(statement, page, per_page)


def get_stock(product_id: int) -> Stock:
    stock = db.session.scalar(_live_stock().where(Stock.product_id == product_id))
    if stock is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    return stock


def add_stock(data: StockChange) -> tuple[Stock, StockLog]:
    """Receive `quantity` units (logged as `in`)."""
    return _change(data.product_id, lambda stock: record_change(stock, "in", data.quantity, data.reason, data.operator))


def reduce_stock(data: StockChange) -> tuple[Stock, StockLog]:
    """Issue `quantity` units (logged as `out`); never below zero."""
    return _change(data.product_id, lambda stock: record_change(stock, "out", data.quantity, data.reason, data.operator))


def adjust_stock(data: StockAdjust) -> tuple[Stock, StockLog | None]:
    """Set the counted level and optionally the thresholds; an unchanged count is not logged."""
    settings = data.model_dump(include={"min_quantity", "max_quantity", "location"}, exclude_unset=True)

    def apply(stock: Stock) -> StockLog | None:
        for field, value in settings.items():
            setattr(stock, field, value)
        check_thresholds(stock)
        if settings:
            stock.updated_at = utcnow()
        if data.quantity == stock.quantity:
            return None
        return record_change(stock, "adjust", data.quantity, data.reason, data.operator)

    return _change(data.product_id, apply)


def _change(product_id: int, apply) -> tuple[Stock, StockLog | None]:
    def work():
        stock = lock_stock(product_id)
        return stock, apply(stock)

    return run_in_write_transaction(work)


def lock_stock(product_id: int) -> Stock:
    """The live product's stock row, locked until commit (FOR UPDATE; SQLite holds
    the database write lock already)."""
    stock = db.session.scalar(_live_stock().where(Stock.product_id == product_id).with_for_update())
    if stock is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    return stock


def check_thresholds(stock: Stock) -> None:
    if stock.max_quantity is not None and stock.max_quantity < (stock.min_quantity or 0):
        raise ValidationFailed("最大库存不能小于最小库存", {"max_quantity": "不能小于 min_quantity"})


def record_change(stock: Stock, action: str, amount: int, reason: str | None, operator: str | None) -> StockLog:
    """Apply one movement to a locked stock row and append its ledger row.

    `amount` is the units moved for `in`/`out` and the new level for `adjust`.
    The UPDATE only matches while the row still holds the count read under the
    lock, so a change can never be applied on top of a stale value.
    """
    before = stock.quantity
    after = {"in": before + amount, "out": before - amount, "adjust": amount}[action]
    if after < 0:
        raise InsufficientStock(details={"product_id": stock.product_id, "available": before, "requested": amount})
    if after > MAX_STOCK:
        raise ValidationFailed("库存数量超出上限", {"quantity": f"结果库存不能超过 {MAX_STOCK}"})
    result = db.session.execute(
        update(Stock)
        .where(Stock.product_id == stock.product_id, Stock.quantity == before)
        .values(quantity=after, updated_at=utcnow()),
        execution_options={"synchronize_session": "fetch"},
    )
    if result.rowcount != 1:
        raise Conflict("库存已被并发修改，请重试", {"product_id": stock.product_id})
    log = StockLog(
        product_id=stock.product_id,
        action=action,
        quantity=after - before if action == "adjust" else amount,
        before_quantity=before,
        after_quantity=after,
        reason=reason,
        operator=operator,
        sku=stock.product.sku,
        product_name=stock.product.name,
    )
    db.session.add(log)
    db.session.flush()
    return log
