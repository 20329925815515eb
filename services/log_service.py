"""Reading the movement ledger: filtered lists, one movement, a product's history."""
import math
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, bindparam, case, func, select

from db import db
from db.reads import PreparedRead
from models import ACTIONS, MovementDaily, Stock, StockLog
from models.stock_log import NEWEST_FIRST_HINT
from schemas.log import LedgerPageQuery, LogFilters, LogQuery
from services import views
from services.pagination import Landmark, Ordering, Position, paginate
from services.transaction import begin_snapshot
from utils.exceptions import NotFound
from utils.pagination import Page

NEWEST_FIRST = Ordering("-id", (StockLog.id.desc(),))


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def end_of(day: date) -> datetime:
    """The first instant after `day` (UTC): a date-only upper bound covers the whole day."""
    if day == date.max:
        return datetime.max.replace(tzinfo=timezone.utc)
    return day_start(day + timedelta(days=1))


def time_filters(start: date | datetime | None, end: date | datetime | None) -> list:
    """`start` inclusive; `end` inclusive, a date-only `end` covering that whole day."""
    filters = []
    if start is not None:
        filters.append(StockLog.created_at >= (start if isinstance(start, datetime) else day_start(start)))
    if isinstance(end, datetime):
        filters.append(StockLog.created_at <= end)
    elif end is not None:
        filters.append(StockLog.created_at < end_of(end))
    return filters


def log_filters(query: LogFilters) -> list:
    """The WHERE terms of the log list's filters (its export's too)."""
    filters = time_filters(query.start_date, query.end_date)
    if query.product_id is not None:
        filters.append(StockLog.product_id == query.product_id)
    if query.action:
        filters.append(StockLog.action == query.action)
    if query.operator:
        filters.append(StockLog.operator == query.operator)
    if query.warehouse_id is not None:
        filters.append(StockLog.warehouse_id == query.warehouse_id)
    if query.transfer_id:
        filters.append(StockLog.transfer_id == query.transfer_id)
    return filters


def list_logs(query: LogQuery) -> Page:
    """Newest first, filtered by product, action, operator, warehouse, transfer and time; by page number or
    cursor (`before_id` is the cursor `after` of the row with that id). `total` counts
    the whole filtered list either way."""
    begin_snapshot()
    filters = log_filters(query)
    total = None
    if not (query.operator or query.warehouse_id or query.transfer_id or query.start_date or query.end_date):
        total = _movement_count(query.product_id, query.action)
    statement = select(StockLog).where(*filters)
    if not filters:
        statement = statement.with_hint(StockLog, NEWEST_FIRST_HINT, dialect_name="mysql")
    page = paginate(statement, query, NEWEST_FIRST, views.LOG, total=total, start=_older_than(query.before_id),
                    landmarks=None if filters else _day_landmarks)
    return replace(page, keyset=True)


def _day_landmarks() -> list[Landmark]:
    """Where days begin in the whole log, newest first, read off the daily totals (in
    the reader's snapshot, as the rows they count): below day D the log holds exactly
    the rows of D and older days when none of those has an id above the least id of
    a newer day. Then the rows with an id up to X, the greatest id of D and older days,
    come after exactly the newer days' rows. Rows committed out of time order (at
    midnight, or by another Galera node) leave no such cut at a day, and a page near it
    is walked to from a farther one: longer, never wrong. A day whose range is unknown
    is never taken to lie wholly above or below a cut."""
    days = daily_id_ranges([])
    greatest, highest = [], 0  # the greatest id of each day and those older, oldest first
    for *_, last in reversed(days):
        highest = max(highest, math.inf if last is None else last)  # unknown: no cut below it holds
        greatest.append(highest)
    landmarks, newer_rows, least_newer = [], 0, math.inf
    for (_, movements, first, _), below in zip(days, reversed(greatest)):
        if below < least_newer:
            landmarks.append(Landmark(newer_rows, below))
        newer_rows += int(movements)
        least_newer = min(least_newer, 0 if first is None else first)  # unknown: no cut above it holds
    return landmarks


def daily_id_ranges(filters: list) -> list[tuple[date, int, int | None, int | None]]:
    """(day, movements, first id, last id) of the days in `filters`, newest first; the
    ids None when a totals row of that day does not know its range (rows from before
    the ranges were kept)."""
    known = and_(func.count(MovementDaily.first_id) == func.count(), func.count(MovementDaily.last_id) == func.count())
    movements = func.sum(sum(getattr(MovementDaily, f"{name}_movements") for name in ACTIONS))
    return db.session.execute(
        select(MovementDaily.day, movements, case((known, func.min(MovementDaily.first_id))),
               case((known, func.max(MovementDaily.last_id))))
        .where(*filters).group_by(MovementDaily.day).order_by(MovementDaily.day.desc())).all()


def _older_than(before_id: int | None) -> Position | None:
    return None if before_id is None else Position((before_id,))


def get_log(log_id: int) -> StockLog:
    log = db.session.get(StockLog, log_id)
    if log is None:
        raise NotFound("日志不存在", {"log_id": log_id})
    return log


# Any product, deleted ones too: their history stays readable.
_PRODUCT_MOVEMENTS = PreparedRead(select(Stock.movements).where(Stock.product_id == bindparam("product_id")))
# A product's history is read straight off its (product_id, id) index: one statement.
_PRODUCT_HISTORY = PreparedRead(
    views.LOG.where(StockLog.product_id == bindparam("product_id"))
    .order_by(StockLog.id.desc()).limit(bindparam("limit")).offset(bindparam("offset")))


def product_logs(product_id: int, query: LedgerPageQuery) -> Page:
    """A product's history, newest first; still answered after the product is deleted.
    A numbered page is one prepared statement; a cursor page goes through `paginate`."""
    movements = _PRODUCT_MOVEMENTS.first(product_id=product_id)
    if movements is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    total = movements["movements"]
    if query.after or query.before or query.before_id:
        history = select(StockLog).where(StockLog.product_id == product_id)
        page = paginate(history, query, NEWEST_FIRST, views.LOG, total=total, start=_older_than(query.before_id))
        return replace(page, keyset=True)
    offset = (query.page - 1) * query.per_page
    rows = _PRODUCT_HISTORY.all(product_id=product_id, limit=query.per_page, offset=offset)
    items = [views.shaped(row) for row in rows]
    return Page(items=items, page=query.page, per_page=query.per_page, total=total, keyset=True,
                next_after=NEWEST_FIRST.cursor((items[-1].id,)) if items and offset + len(items) < total else None,
                prev_before=NEWEST_FIRST.cursor((items[0].id,)) if items and offset else None)


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
