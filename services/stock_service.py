"""Stock use cases. Every count change locks the stock row, updates it with a
compare-and-set in SQL and appends its hash-chained ledger row in the same transaction."""
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, insert, or_, select, update

from db import db
from db.prepared import PreparedStatement
from db.reads import PreparedRead
from models import ACTIONS, GENESIS_HASH, Product, Stock, StockLog, chain_hash, shard_of
from models.stock import LOW_ROWS, is_low_level
from models.types import utcnow
from schemas.common import MAX_STOCK, PageQuery
from schemas.stock import (
    BatchOut,
    Movement,
    StockAdjust,
    StockBatch,
    StockChange,
    StockChangeOut,
    StockPointQuery,
    StockQuery,
)
from services import views
from services.event_service import record_event
from services.ledger_service import DAILY_TOTALS, DailyTotals
from services.log_service import end_of
from services.pagination import Ordering, contains, count_rows, ordering, paginate
from services.product_counts import live_count
from services.transaction import begin_snapshot, run_in_write_transaction
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


SORTS = {"product_id": Stock.product_id, "name": Product.name, "sku": Product.sku, "quantity": Stock.quantity,
         "min_quantity": Stock.min_quantity, "updated_at": Stock.updated_at}
LOW_STOCK_ORDER = Ordering("shortage", (Stock.shortage.desc(), Stock.product_id.asc()))
_STOCK_BY_PRODUCT = PreparedRead(
    views.STOCK.where(Product.deleted_at.is_(None), Stock.product_id == bindparam("product_id")))


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
    if query.q:
        statement = statement.where(or_(contains(Product.name, query.q), contains(Product.sku, query.q)))
    if query.category:
        statement = statement.where(Product.category == query.category)
    if query.sku:
        statement = statement.where(Product.sku == query.sku)
    if query.barcode:
        statement = statement.where(Product.barcode == query.barcode)
    if query.location:
        statement = statement.where(Stock.location == query.location)
    if query.q or query.sku or query.barcode or query.location or query.low_only:
        total = count_rows(statement)
    else:  # every live product has one stock row: the products' running counts are the total
        total = live_count(query.category)
    if by_product and not (off_products or product_filters):
        statement = statement.join(Stock.product)  # for the order alone, after the count
    order = ordering(query.sort, SORTS, key=Product.id if by_product else Stock.product_id)
    return paginate(statement, query, order, views.STOCK, total=total)


def list_low_stock(query: PageQuery) -> Page:
    """Rows at or below their minimum, largest shortage first. Deleted products have no
    minimum, so only the stock rows' index in exactly this order is read."""
    begin_snapshot()
    return paginate(select(Stock).where(Stock.is_low), query, LOW_STOCK_ORDER, views.STOCK)


def get_stock(product_id: int) -> SimpleNamespace:
    """A live product's stock as shown (services/views.py), or NotFound."""
    row = _STOCK_BY_PRODUCT.first(product_id=product_id)
    if row is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    return views.shaped(row)


def stock_at(product_id: int, point: StockPointQuery) -> dict:
    """The count at a past moment or ledger position, read from one index lookup,
    with the sequence number and hash the answer stands on."""
    get_stock(product_id)
    entries = select(StockLog.seq, StockLog.hash, StockLog.after_quantity).where(StockLog.product_id == product_id)
    if point.as_of_seq is not None:
        answer = {"as_of_seq": point.as_of_seq}
        entry = db.session.execute(entries.where(StockLog.seq == point.as_of_seq)).first()
        if entry is None and point.as_of_seq > 0:
            raise NotFound("该序号的流水不存在", {"as_of_seq": point.as_of_seq})
    else:
        answer = {"as_of": point.as_of}
        moment = point.as_of
        before = StockLog.created_at <= moment if isinstance(moment, datetime) else StockLog.created_at < end_of(moment)
        entry = db.session.execute(
            entries.where(before).order_by(StockLog.created_at.desc(), StockLog.seq.desc()).limit(1)
        ).first()
    if entry is None:
        return {"product_id": product_id, "quantity": 0, **answer, "seq": 0, "hash": GENESIS_HASH}
    return {"product_id": product_id, "quantity": entry.after_quantity, **answer, "seq": entry.seq, "hash": entry.hash}


def add_stock(data: StockChange, actor: str | None = None) -> ChangeResult:
    """Receive `quantity` units (logged as `in`)."""
    return _change(data.product_id, lambda stock: record_change(stock, "in", data, actor))


def reduce_stock(data: StockChange, actor: str | None = None) -> ChangeResult:
    """Issue `quantity` units (logged as `out`); never below zero."""
    return _change(data.product_id, lambda stock: record_change(stock, "out", data, actor))


def adjust_stock(data: StockAdjust, actor: str | None = None) -> ChangeResult:
    """Set the counted level and optionally the thresholds; an unchanged count is not logged."""
    settings = data.model_dump(include={"min_quantity", "max_quantity", "location"}, exclude_unset=True)

    def apply(stock: SimpleNamespace) -> SimpleNamespace | None:
        if settings:
            _change_settings(stock, settings)
        return record_change(stock, "adjust", data, actor)

    return _change(data.product_id, apply)


def _change_settings(stock: SimpleNamespace, settings: dict) -> None:
    """New thresholds or location on a locked stock row. They are editable with PUT
    too, so the product's version (its ETag) is bumped: an edit based on the old
    settings then gets 412 instead of undoing this."""
    was_low = stock.is_low
    vars(stock).update(settings)
    check_thresholds(stock)
    stock.updated_at = utcnow()
    connection = db.session.connection()
    connection.execute(update(Stock).where(Stock.product_id == stock.product_id).values(
        **settings, updated_at=stock.updated_at))
    connection.execute(_BUMP_PRODUCT_VERSION, {"product": stock.product_id, "now": stock.updated_at})
    stock.is_low = is_low_level(stock.quantity, stock.min_quantity)
    announce_low(stock, was_low)


def announce_low(stock, was_low: bool) -> None:
    """A `stock.low` event when a change made the product low (not on every change while it stays low)."""
    if stock.is_low and not was_low:
        record_event("stock.low", {
            "product_id": stock.product_id, "sku": stock.product.sku, "name": stock.product.name,
            "quantity": stock.quantity, "min_quantity": stock.min_quantity, "warehouse_id": None,
        }, product_id=stock.product_id)


BATCH_ACTIONS = {"add": "in", "reduce": "out", "adjust": "adjust"}


def apply_batch(batch: StockBatch, actor: str | None = None) -> BatchOut:
    """All changes in one transaction, or none. Rows are locked in product-id order,
    so two batches over the same products can never wait on each other in a cycle.
    A dry run does everything, answers, and rolls back."""

    def work() -> BatchOut:
        stocks: dict[int, Stock] = {}
        for product_id in sorted({change.product_id for change in batch.changes}):
            first = next(i for i, change in enumerate(batch.changes) if change.product_id == product_id)
            stocks[product_id] = _at_index(first, lambda: lock_stock(product_id))
        results, daily = [], DailyTotals()
        for index, change in enumerate(batch.changes):
            stock = stocks[change.product_id]
            log = _at_index(index, lambda: record_change(stock, BATCH_ACTIONS[change.action], change, actor, daily))
            result = StockChangeOut.model_validate({"stock": stock, "log": log})
            if batch.dry_run and result.log is not None:
                result.log.id = None
            results.append(result)
        daily.write(db.session.connection())
        return BatchOut(results=results, dry_run=batch.dry_run)

    return run_in_write_transaction(work, commit=not batch.dry_run)


def _at_index(index: int, step: Callable):
    """Run one batch step; an error names the change it came from."""
    try:
        return step()
    except AppError as exc:
        exc.details = {"index": index, **exc.details}
        raise


def _change(product_id: int, apply: Callable[[SimpleNamespace], SimpleNamespace | None]) -> ChangeResult:
    def work() -> ChangeResult:
        stock = lock_stock(product_id)
        return stock, apply(stock)

    return run_in_write_transaction(work)


def lock_stock(product_id: int) -> SimpleNamespace:
    """The live product's stock row as shown (with the product's SKU and name), locked
    until commit (FOR UPDATE; SQLite holds the database write lock already)."""
    rows = _LOCK_STOCK.run(db.session.connection(), product_id=product_id).rows
    if not rows:
        raise NotFound("商品不存在", {"product_id": product_id})
    return views.shaped(rows[0])


def check_thresholds(stock) -> None:
    """A change that leaves the maximum below the minimum: the request's own values are in
    order (its schema checks that), so it is the values kept from before that it conflicts with."""
    if stock.max_quantity is not None and stock.max_quantity < (stock.min_quantity or 0):
        raise Conflict("最大库存不能小于最小库存",
                       {"min_quantity": stock.min_quantity, "max_quantity": stock.max_quantity})


def record_change(stock: SimpleNamespace, action: str, movement: Movement | StockChange,
                  actor: str | None = None, daily: DailyTotals | None = None) -> SimpleNamespace | None:
    """Apply one movement to a locked stock row (from `lock_stock`, kept up to date
    here) and append its ledger row and its `stock.changed` event (and `stock.low`
    when it made the product low); the log row is returned. The movement is added to
    its day's totals at once, or to `daily` for the caller to write.

    `actor` is the API key's name when the request carried one: it becomes the
    log's `operator`, and the client's own `operator` is kept as `on_behalf_of`.

    `movement.quantity` is the units moved for `in`/`out` and the new level for
    `adjust` (an adjust to the current level writes nothing and returns None).
    The UPDATE only matches while the row still holds the count read under the
    lock, so a change can never be applied on top of a stale value. Statements are
    built once and run on the transaction's connection: this is the hottest write.
    """
    before = stock.quantity
    amount = movement.quantity
    if movement.expected_quantity is not None and movement.expected_quantity != before:
        raise Conflict(
            "当前库存与 expected_quantity 不符",
            {"product_id": stock.product_id, "expected_quantity": movement.expected_quantity, "current_quantity": before},
        )
    after = {"in": before + amount, "out": before - amount, "adjust": amount}[action]
    if after == before and action == "adjust":
        return None
    if after < 0:
        raise InsufficientStock(details={"product_id": stock.product_id, "available": before, "requested": amount})
    if after > MAX_STOCK:
        raise ValidationFailed("库存数量超出上限", {"quantity": f"结果库存不能超过 {MAX_STOCK}"})
    logged = after - before if action == "adjust" else amount
    now = utcnow()
    connection = db.session.connection()
    changed = _UPDATE_COUNT.run(
        connection, stock_of=stock.product_id, before=before, after=after, now=now,
        **{f"{name}_delta": logged if action == name else 0 for name in ACTIONS}, moved=abs(logged),
    )
    if changed.rowcount != 1:
        raise Conflict("库存已被并发修改，请重试", {"product_id": stock.product_id})
    was_low = stock.is_low
    stock.quantity, stock.updated_at, stock.is_low = after, now, is_low_level(after, stock.min_quantity)
    log = _append_log(connection, stock, action, logged, before, after, movement, actor, now)
    record_event("stock.changed", logged_row(log), product_id=stock.product_id, occurred_at=now)
    announce_low(stock, was_low)
    if daily is not None:
        daily.add(stock.product_id, log.created_at.date(), action, logged)
        return log
    DAILY_TOTALS.run(
        connection, day=log.created_at.date(), shard=shard_of(stock.product_id),
        **{f"{name}_movements": int(action == name) for name in ACTIONS},
        **{f"{name}_quantity": logged if action == name else 0 for name in ACTIONS},
    )
    return log


def logged_row(log: SimpleNamespace) -> dict:
    """A ledger row as `/api/logs` shows it (schemas.log.LogOut), built directly: this is
    the write path, and validating the row through the response model costs ~4 % of it."""
    return {"id": log.id, "product_id": log.product_id, "seq": log.seq, "action": log.action,
            "quantity": log.quantity, "before_quantity": log.before_quantity, "after_quantity": log.after_quantity,
            "reason": log.reason, "operator": log.operator, "on_behalf_of": log.on_behalf_of, "sku": log.sku,
            "name": log.product_name, "created_at": log.created_at, "prev_hash": log.prev_hash, "hash": log.hash}


def _who(movement, actor: str | None) -> tuple[str | None, str | None]:
    """(operator, on_behalf_of): a key's name cannot be overridden by the client."""
    if actor is None:
        return movement.operator, None
    return actor, movement.operator if movement.operator != actor else None


def _append_log(connection, stock: SimpleNamespace, action: str, quantity: int, before: int, after: int,
                movement, actor: str | None, now) -> SimpleNamespace:
    """The next ledger row of this product, chained to the previous one. Its time
    never goes back within a product, so `as_of` and sequence order agree."""
    last = _LAST_LOG.run(connection, product_id=stock.product_id).rows
    previous = SimpleNamespace(**last[0]) if last else None
    operator, on_behalf_of = _who(movement, actor)
    log = SimpleNamespace(
        product_id=stock.product_id,
        seq=previous.seq + 1 if previous else 1,
        action=action,
        quantity=quantity,
        before_quantity=before,
        after_quantity=after,
        reason=movement.reason,
        operator=operator,
        on_behalf_of=on_behalf_of,
        sku=stock.product.sku,
        product_name=stock.product.name,
        created_at=max(now, previous.created_at) if previous else now,
        prev_hash=previous.hash if previous else GENESIS_HASH,
    )
    log.hash = chain_hash(log)
    log.id = _INSERT_LOG.run(connection, **vars(log)).lastrowid
    return log


# Statements of the write path, compiled once per database and run on the transaction's connection.
_LOCK_STOCK = PreparedStatement(
    views.STOCK.where(Product.deleted_at.is_(None), Stock.product_id == bindparam("product_id")).with_for_update())
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
_INSERT_LOG = PreparedStatement(insert(StockLog).values(
    {column.key: bindparam(column.key) for column in StockLog.__table__.columns if column.key != "id"}))
