"""Read-only figures for the web console: totals, stock value and time series,
each one aggregate query in SQL (never a whole table loaded into Python)."""
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, case, func, select, type_coerce

from database import db
from models import Product, Stock, StockLog
from models.types import utcnow

DEFAULT_DAYS = 30
HISTORY_POINTS = 200


def overview() -> dict[str, Any]:
    """Live product count, units in stock, stock value (sum of quantity × price) and
    how many products are at or below their minimum, in one aggregate query."""
    value = type_coerce(func.sum(Stock.quantity * Product.price), Numeric(30, 2))
    row = db.session.execute(
        select(
            func.count(Product.id),
            func.coalesce(func.sum(Stock.quantity), 0),
            value,
            func.coalesce(func.sum(case((Stock.is_low, 1), else_=0)), 0),
        )
        .select_from(Product)
        .join(Stock, Stock.product_id == Product.id)
        .where(Product.deleted_at.is_(None))
    ).one()
    products, units, stock_value, low = row
    return {
        "product_count": int(products),
        "total_units": int(units),
        "stock_value": Decimal(stock_value or 0).quantize(Decimal("0.01")),
        "low_stock_count": int(low),
    }


def low_stock_count() -> int:
    """How many live products are at or below their minimum (the navigation badge)."""
    return db.session.scalar(select(func.count()).select_from(Stock).where(Stock.is_low)) or 0  # deleted: never low


def daily_movements(days: int = DEFAULT_DAYS, today: date | None = None) -> list[dict[str, Any]]:
    """Units received, issued and adjusted per UTC day over the last `days` days
    (today included), one entry per day, days without movements as zeros."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    day = func.date(StockLog.created_at)

    def total(action: str):
        return func.coalesce(func.sum(case((StockLog.action == action, StockLog.quantity), else_=0)), 0)

    rows = db.session.execute(
        select(day, total("in"), total("out"), total("adjust"))
        .where(StockLog.created_at >= datetime.combine(first, time.min, tzinfo=timezone.utc))
        .group_by(day)
    )
    found = {str(when): (int(units_in), int(units_out), int(adjusted)) for when, units_in, units_out, adjusted in rows}
    series = []
    for offset in range(days):
        key = (first + timedelta(days=offset)).isoformat()
        units_in, units_out, adjusted = found.get(key, (0, 0, 0))
        series.append({"date": key, "in": units_in, "out": units_out, "adjust": adjusted})
    return series


def quantity_history(product_id: int, points: int = HISTORY_POINTS) -> list[dict[str, Any]]:
    """A product's stock level after each of its last `points` movements, oldest first."""
    rows = db.session.execute(
        select(StockLog.created_at, StockLog.after_quantity, StockLog.seq)
        .where(StockLog.product_id == product_id)
        .order_by(StockLog.seq.desc())
        .limit(points)
    ).all()
    return [{"at": at, "quantity": quantity, "seq": seq} for at, quantity, seq in reversed(rows)]
