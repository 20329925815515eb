"""Movement statistics over any time range, aggregated in SQL.

Across all products a range is answered from the per-day running totals
(`movement_daily`, kept in each movement's transaction, a row per day and shard of
products, models/shards.py) for the whole UTC days inside
it, and from the ledger only for the partial days at its edges, read off the ledger's
`created_at` index alone. For one product, its ledger rows in the range are few and
read off its `(product_id, created_at)` index. The busiest products: services/top_products.py.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, or_, select

from db import db
from models import ACTIONS, MovementDaily, StockLog
from schemas.log import StatisticsQuery
from services import top_products
from services.log_service import day_start, end_of, time_filters
from services.transaction import begin_snapshot

DAILY_ACTIONS = ("in", "out", "adjust")  # the daily series: transfers change no day's stock
MICROSECOND = timedelta(microseconds=1)
LAST_INSTANT = datetime.max.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Span:
    """A range as instants: from `lower` (inclusive) to `upper` (exclusive); None is unbounded."""

    lower: datetime | None
    upper: datetime | None

    @classmethod
    def of(cls, start: date | datetime | None, end: date | datetime | None) -> "Span":
        """`start` inclusive; `end` inclusive, a date-only `end` covering that whole day."""
        lower = start if isinstance(start, datetime) or start is None else day_start(start)
        if isinstance(end, datetime):
            upper = None if end >= LAST_INSTANT - MICROSECOND else end + MICROSECOND
        else:
            upper = None if end is None else end_of(end)
        return cls(lower, upper)

    def whole_days(self) -> tuple[date | None, date | None] | None:
        """The first and last UTC day lying wholly inside (None: no bound that way), or
        None when no day does."""
        first = last = None
        if self.lower is not None:
            first = self.lower.date()
            if self.lower != day_start(first):
                if first == date.max:
                    return None
                first += timedelta(days=1)
        if self.upper is not None:
            if self.upper.date() == date.min:
                return None
            last = self.upper.date() - timedelta(days=1)
        if first is not None and last is not None and first > last:
            return None
        return first, last

    def edges(self) -> list:
        """Conditions on `created_at` for what lies inside but outside the whole days."""
        days = self.whole_days()
        if days is None:
            return [] if self.lower is not None and self.upper is not None and self.lower >= self.upper else [
                _between(self.lower, self.upper)]
        first, last = days
        edges = []
        if first is not None and self.lower is not None and self.lower < day_start(first):
            edges.append(_between(self.lower, day_start(first)))
        if last is not None and self.upper is not None and self.upper > end_of(last):
            edges.append(_between(end_of(last), self.upper))
        return edges


def _between(lower: datetime | None, upper: datetime | None):
    parts = [] if lower is None else [StockLog.created_at >= lower]
    if upper is not None:
        parts.append(StockLog.created_at < upper)
    return parts[0] if len(parts) == 1 else parts[0] & parts[1]


def statistics(query: StatisticsQuery) -> dict[str, Any]:
    """Totals, per-action sums, the busiest products and a daily series, all from one
    snapshot."""
    begin_snapshot()
    span = Span.of(query.start_date, query.end_date)
    if query.product_id is not None:
        filters = [StockLog.product_id == query.product_id, *time_filters(query.start_date, query.end_date)]
        per_day = ledger_per_day(filters)
        by_action, daily = _by_action(per_day), _daily(per_day)
        busiest = top_products.summed_inside(filters)
    else:
        edges = span.edges()
        per_day = ledger_per_day([or_(*edges)]) if edges else []
        days = span.whole_days()
        by_action = _by_action(per_day, _action_totals(*days) if days else None)
        daily = sorted(_daily(per_day) + (daily_totals(*days) if days else []), key=lambda entry: entry["date"])
        if _covers_every_movement(span):
            busiest = top_products.of_all_time(bounded=query.start_date is not None or query.end_date is not None)
        else:
            busiest = top_products.of_range(time_filters(query.start_date, query.end_date),
                                            sum(entry["count"] for entry in by_action.values()))
    total_in = by_action["in"]["quantity"]
    total_out = by_action["out"]["quantity"]
    return {
        "total_logs": sum(entry["count"] for entry in by_action.values()),
        "total_in": total_in,
        "total_out": total_out,
        "net_change": total_in - total_out + by_action["adjust"]["quantity"],
        "by_action": by_action,
        "top_products": busiest,
        "daily": daily,
    }


def ledger_per_day(filters: list) -> list:
    """(day, action, count, quantity) of the ledger rows matching `filters`."""
    day = func.date(StockLog.created_at)
    return db.session.execute(
        select(day, StockLog.action, func.count(), func.sum(StockLog.quantity))
        .where(*filters).group_by(day, StockLog.action)
    ).all()


def _by_action(per_day: list, totals: dict | None = None) -> dict:
    by_action = totals or {action: {"count": 0, "quantity": 0} for action in ACTIONS}
    for _, action, count, quantity in per_day:
        by_action[action] = {"count": by_action[action]["count"] + count,
                             "quantity": by_action[action]["quantity"] + int(quantity)}
    return by_action


def _daily(per_day: list) -> list[dict]:
    days: dict[str, dict] = {}
    for day, action, _, quantity in per_day:
        entry = days.setdefault(str(day), {"date": str(day), **dict.fromkeys(DAILY_ACTIONS, 0)})
        if action in DAILY_ACTIONS:
            entry[action] += int(quantity)
    return list(days.values())


def _day_range(first: date | None, last: date | None) -> list:
    days = [MovementDaily.day >= first] if first else []
    if last:
        days.append(MovementDaily.day <= last)
    return days


def _action_totals(first: date | None, last: date | None) -> dict:
    """Count and quantity per action over whole days, from the per-day running totals."""
    columns = [getattr(MovementDaily, f"{action}_{kind}") for action in ACTIONS for kind in ("movements", "quantity")]
    sums = db.session.execute(select(*(func.coalesce(func.sum(c), 0) for c in columns)).where(*_day_range(first, last))).one()
    return {action: {"count": int(sums[2 * i]), "quantity": int(sums[2 * i + 1])} for i, action in enumerate(ACTIONS)}


def daily_totals(first: date | None, last: date | None) -> list[dict]:
    """Units in, out and adjusted per UTC day with movements, oldest first, read from the
    per-day running totals (a day's shards summed, never the ledger itself)."""
    rows = db.session.execute(
        select(MovementDaily.day, func.sum(MovementDaily.in_quantity), func.sum(MovementDaily.out_quantity),
               func.sum(MovementDaily.adjust_quantity))
        .where(*_day_range(first, last))
        .group_by(MovementDaily.day)
        .order_by(MovementDaily.day)
    )
    return [{"date": str(day), "in": int(i), "out": int(o), "adjust": int(a)} for day, i, o, a in rows]


def _covers_every_movement(span: Span) -> bool:
    """Whether the range holds the whole ledger (no bounds, or bounds beyond its first
    and last movement: two index lookups), so that the running totals per product
    answer the busiest products."""
    if span.lower is not None:
        # One aggregate a statement: SQLite reads min() or max() off the index only alone.
        first = db.session.scalar(select(func.min(StockLog.created_at)))
        if first is not None and span.lower > first:
            return False
    if span.upper is not None:
        last = db.session.scalar(select(func.max(StockLog.created_at)))
        if last is not None and span.upper <= last:
            return False
    return True
