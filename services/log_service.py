"""Reading the movement ledger: filtered lists and SQL-side statistics."""
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import case, func, select

from database import db
from models import ACTIONS, Product, StockLog
from schemas.log import LogQuery, StatisticsQuery
from services.pagination import paginate
from utils.exceptions import NotFound
from utils.pagination import Page

TOP_PRODUCTS = 10


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
    """Newest first, filtered by product, action, operator and time."""
    filters = _time_filters(query.start_date, query.end_date)
    if query.product_id is not None:
        filters.append(StockLog.product_id == query.product_id)
    if query.action:
        filters.append(StockLog.action == query.action)
    if query.operator:
        filters.append(StockLog.operator == query.operator)
    statement = select(StockLog).where(*filters).order_by(StockLog.id.desc())
    return paginate(statement, query.page, query.per_page)


def get_log(log_id: int) -> StockLog:
    log = db.session.get(StockLog, log_id)
    if log is None:
        raise NotFound("日志不存在", {"log_id": log_id})
    return log


def product_logs(product_id: int, page: int, per_page: int) -> Page:
    """A product's history, newest first; still answered after the product is deleted."""
    if db.session.get(Product, product_id) is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    statement = select(StockLog).where(StockLog.product_id == product_id).order_by(StockLog.id.desc())
    return paginate(statement, page, per_page)


def list_actions() -> list[dict[str, str]]:
    return [{"value": value, "label": label} for value, label in ACTIONS.items()]


def _sum_where(action: str, column=StockLog.quantity):
    return func.coalesce(func.sum(case((StockLog.action == action, column), else_=0)), 0)


def statistics(query: StatisticsQuery) -> dict[str, Any]:
    """Totals, per-action sums, the busiest products and a daily series, all aggregated in SQL."""
    filters = _time_filters(query.start_date, query.end_date)
    if query.product_id is not None:
        filters.append(StockLog.product_id == query.product_id)

    by_action = {action: {"count": 0, "quantity": 0} for action in ACTIONS}
    for action, count, quantity in db.session.execute(
        select(StockLog.action, func.count(), func.coalesce(func.sum(StockLog.quantity), 0))
        .where(*filters)
        .group_by(StockLog.action)
    ):
        by_action[action] = {"count": count, "quantity": int(quantity)}

    moved = func.sum(func.abs(StockLog.quantity))
    top_rows = db.session.execute(
        select(
            StockLog.product_id,
            Product.name,
            func.coalesce(Product.sku, func.max(StockLog.sku)),
            func.count(),
            _sum_where("in"),
            _sum_where("out"),
            moved,
        )
        .join(Product, Product.id == StockLog.product_id)
        .where(*filters)
        .group_by(StockLog.product_id, Product.name, Product.sku)
        .order_by(moved.desc(), StockLog.product_id)
        .limit(TOP_PRODUCTS)
    )
    top_products = [
        {"product_id": pid, "name": name, "sku": sku, "movements": count,
         "total_in": int(total_in), "total_out": int(total_out), "units_moved": int(units)}
        for pid, name, sku, count, total_in, total_out, units in top_rows
    ]

    day = func.date(StockLog.created_at)
    daily = [
        {"date": str(when), "in": int(total_in), "out": int(total_out), "adjust": int(adjusted)}
        for when, total_in, total_out, adjusted in db.session.execute(
            select(day, _sum_where("in"), _sum_where("out"), _sum_where("adjust"))
            .where(*filters)
            .group_by(day)
            .order_by(day)
        )
    ]

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
