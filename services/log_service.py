"""Reading the movement ledger: filtered lists and SQL-side statistics."""
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, case, func, select

from db import db
from db.reads import PreparedRead
from models import ACTIONS, MovementDaily, Product, Stock, StockLog
from models.stock_log import NEWEST_FIRST_HINT
from schemas.common import MAX_ID
from schemas.log import LogQuery, StatisticsQuery
from services import views
from services.pagination import count_rows, keyset_page, paginate
from services.transaction import begin_snapshot
from utils.exceptions import NotFound
from utils.pagination import Page

TOP_PRODUCTS = 10
NEWEST_FIRST = [StockLog.id.desc()]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def end_of(day: date) -> datetime:
    """The first instant after `day` (UTC): a date-only upper bound covers the whole day."""
    if day == date.max:
        return datetime.max.replace(tzinfo=timezone.utc)
    return _start_of(day + timedelta(days=1))


def _time_filters(start: date | datetime | None, end: date | datetime | None) -> list:
    """`start` inclusive; `end` inclusive, a date-only `end` covering that whole day."""
    filters = []
    if start is not None:
        filters.append(StockLog.created_at >= (start if isinstance(start, datetime) else _start_of(start)))
    if isinstance(end, datetime):
        filters.append(StockLog.created_at <= end)
    elif end is not None:
        filters.append(StockLog.created_at < end_of(end))
    return filters


def list_logs(query: LogQuery) -> Page:
    """Newest first, filtered by product, action, operator and time; with `before_id`,
    the rows older than that one. `total` counts the whole filtered list either way."""
    begin_snapshot()
    filters = _time_filters(query.start_date, query.end_date)
    if query.product_id is not None:
        filters.append(StockLog.product_id == query.product_id)
    if query.action:
        filters.append(StockLog.action == query.action)
    if query.operator:
        filters.append(StockLog.operator == query.operator)
    total = None
    if query.operator is None and query.start_date is None and query.end_date is None:
        total = _movement_count(query.product_id, query.action)
    if query.before_id is not None:
        listed = views.LOG.where(*filters)
        return keyset_page(listed, StockLog.id, query.before_id, query.per_page,
                           count_rows(listed) if total is None else total)
    statement = select(StockLog).where(*filters)
    if not filters:
        statement = statement.with_hint(StockLog, NEWEST_FIRST_HINT, dialect_name="mysql")
    page = paginate(statement, query.page, query.per_page, order=NEWEST_FIRST, key=StockLog.id, view=views.LOG,
                    total=total)
    return replace(page, keyset=True)


def get_log(log_id: int) -> StockLog:
    log = db.session.get(StockLog, log_id)
    if log is None:
        raise NotFound("日志不存在", {"log_id": log_id})
    return log


# Any product, deleted ones too: their history stays readable.
_PRODUCT_MOVEMENTS = PreparedRead(select(Stock.movements).where(Stock.product_id == bindparam("product_id")))
# A product's history is read straight off its (product_id, id) index: one statement.
_PRODUCT_HISTORY = PreparedRead(
    views.LOG.where(StockLog.product_id == bindparam("product_id"), StockLog.id <= bindparam("up_to_id"))
    .order_by(StockLog.id.desc()).limit(bindparam("limit")).offset(bindparam("offset")))


def product_logs(product_id: int, page: int, per_page: int, before_id: int | None = None) -> Page:
    """A product's history, newest first (older than `before_id` when given); still
    answered after the product is deleted."""
    movements = _PRODUCT_MOVEMENTS.first(product_id=product_id)
    if movements is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    rows = _PRODUCT_HISTORY.all(product_id=product_id, up_to_id=MAX_ID if before_id is None else before_id - 1,
                                limit=per_page, offset=(page - 1) * per_page)
    return Page(items=[views.shaped(row) for row in rows], page=page, per_page=per_page, total=movements["movements"],
                keyset=True)


def _movement_count(product_id: int | None, action: str | None) -> int:
    """How many ledger rows match, from the running totals kept with every movement
    (exact, as they commit together) instead of counting a million rows."""
    if product_id is None:
        actions = [action] if action else list(ACTIONS)
        return int(db.session.scalar(select(func.coalesce(func.sum(
            sum(getattr(MovementDaily, f"{name}_movements") for name in actions)), 0))))
    if action is None:
        return db.session.scalar(select(Stock.movements).where(Stock.product_id == product_id)) or 0
    return db.session.scalar(
        select(func.count()).select_from(StockLog).where(StockLog.product_id == product_id, StockLog.action == action))


def list_actions() -> list[dict[str, str]]:
    return [{"value": value, "label": label} for value, label in ACTIONS.items()]


def _sum_where(action: str, column=StockLog.quantity):
    return func.coalesce(func.sum(case((StockLog.action == action, column), else_=0)), 0)


def statistics(query: StatisticsQuery) -> dict[str, Any]:
    """Totals, per-action sums, the busiest products and a daily series, aggregated in SQL.

    Whole days across all products are answered from the running totals that every
    movement updates in its own transaction (the stock rows and `movement_daily`);
    a product or a time of day narrows the question enough to aggregate the ledger.
    """
    whole_days = not any(isinstance(bound, datetime) for bound in (query.start_date, query.end_date))
    if query.product_id is None and whole_days:
        by_action, daily = _action_totals(query.start_date, query.end_date), daily_totals(query.start_date, query.end_date)
        unbounded = query.start_date is None and query.end_date is None
        top_products = _top_products_overall() if unbounded else _top_products_in(_time_filters(query.start_date, query.end_date))
    else:
        filters = _time_filters(query.start_date, query.end_date)
        if query.product_id is not None:
            filters.append(StockLog.product_id == query.product_id)
        by_action, daily = _ledger_by_action(filters), _ledger_daily(filters)
        top_products = _top_products_in(filters)
    total_in = by_action["in"]["quantity"]
    total_out = by_action["out"]["quantity"]
    return {
        "total_logs": sum(entry["count"] for entry in by_action.values()),
        "total_in": total_in,
        "total_out": total_out,
        "net_change": total_in - total_out + by_action["adjust"]["quantity"],
        "by_action": by_action,
        "top_products": top_products,
        "daily": daily,
    }


def _day_range(start: date | None, end: date | None) -> list:
    days = [MovementDaily.day >= start] if start else []
    if end:
        days.append(MovementDaily.day <= end)
    return days


def _action_totals(start: date | None, end: date | None) -> dict:
    """Count and quantity per action over whole days, from the per-day running totals."""
    days = _day_range(start, end)
    columns = [getattr(MovementDaily, f"{action}_{kind}") for action in ACTIONS for kind in ("movements", "quantity")]
    sums = db.session.execute(select(*(func.coalesce(func.sum(c), 0) for c in columns)).where(*days)).one()
    return {action: {"count": int(sums[2 * i]), "quantity": int(sums[2 * i + 1])} for i, action in enumerate(ACTIONS)}


def daily_totals(start: date | None, end: date | None) -> list[dict]:
    """Units in, out and adjusted per UTC day with movements, oldest first, read from the
    per-day running totals (a row a day, never the ledger itself)."""
    rows = db.session.execute(
        select(MovementDaily.day, MovementDaily.in_quantity, MovementDaily.out_quantity, MovementDaily.adjust_quantity)
        .where(*_day_range(start, end))
        .order_by(MovementDaily.day)
    )
    return [{"date": str(day), "in": int(i), "out": int(o), "adjust": int(a)} for day, i, o, a in rows]


def _top_products_overall() -> list[dict]:
    """The busiest products of all time, from their stock rows' running totals (indexed)."""
    last_sku = (
        select(StockLog.sku).where(StockLog.product_id == Stock.product_id)
        .order_by(StockLog.seq.desc()).limit(1).scalar_subquery()
    )
    rows = db.session.execute(
        select(Stock.product_id, Product.name, func.coalesce(Product.sku, last_sku), Stock.movements,
               Stock.total_in, Stock.total_out, Stock.units_moved)
        .join(Product, Product.id == Stock.product_id)
        .where(Stock.movements > 0)
        .order_by(Stock.units_moved.desc(), Stock.product_id)
        .limit(TOP_PRODUCTS)
    )
    return [_top_entry(*row) for row in rows]


def _top_products_in(filters: list) -> list[dict]:
    moved = func.sum(func.abs(StockLog.quantity))
    rows = db.session.execute(
        select(StockLog.product_id, Product.name, func.coalesce(Product.sku, func.max(StockLog.sku)), func.count(),
               _sum_where("in"), _sum_where("out"), moved)
        .join(Product, Product.id == StockLog.product_id)
        .where(*filters)
        .group_by(StockLog.product_id, Product.name, Product.sku)
        .order_by(moved.desc(), StockLog.product_id)
        .limit(TOP_PRODUCTS)
    )
    return [_top_entry(*row) for row in rows]


def _top_entry(product_id, name, sku, movements, total_in, total_out, units) -> dict:
    return {"product_id": product_id, "name": name, "sku": sku, "movements": int(movements),
            "total_in": int(total_in), "total_out": int(total_out), "units_moved": int(units)}


def _ledger_by_action(filters: list) -> dict:
    by_action = {action: {"count": 0, "quantity": 0} for action in ACTIONS}
    for action, count, quantity in db.session.execute(
        select(StockLog.action, func.count(), func.coalesce(func.sum(StockLog.quantity), 0))
        .where(*filters)
        .group_by(StockLog.action)
    ):
        by_action[action] = {"count": count, "quantity": int(quantity)}
    return by_action


def _ledger_daily(filters: list) -> list[dict]:
    day = func.date(StockLog.created_at)
    rows = db.session.execute(
        select(day, _sum_where("in"), _sum_where("out"), _sum_where("adjust")).where(*filters).group_by(day).order_by(day)
    )
    return [{"date": str(when), "in": int(i), "out": int(o), "adjust": int(a)} for when, i, o, a in rows]
