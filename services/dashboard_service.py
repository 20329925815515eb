"""Read-only figures for the web console: totals, stock value and time series,
each one aggregate query in SQL (never a whole table loaded into Python)."""
from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import Numeric, case, func, select, type_coerce

from db import db
from models import Product, Stock, StockLog
from models.types import utcnow
from services import statistics_service

DEFAULT_DAYS = 30
HISTORY_POINTS = 200
# Digits of the stock value: MySQL's widest DECIMAL, which its SUM never exceeds. At the
# limits (prices to 9,999,999,999.99, levels to 10^15) a dozen products pass the 28
# digits of Python's default decimal context, and rounding the sum there raised.
STOCK_VALUE_DIGITS = 65


def overview() -> dict[str, Any]:
    """Live product count, units in stock, stock value (sum of quantity × price) and
    how many products are at or below their minimum, in one aggregate query."""
    value = type_coerce(func.sum(Stock.quantity * Product.price), Numeric(STOCK_VALUE_DIGITS, 2))
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
    with localcontext(prec=STOCK_VALUE_DIGITS):
        stock_value = Decimal(stock_value or 0).quantize(Decimal("0.01"))
    return {
        "product_count": int(products),
        "total_units": int(units),
        "stock_value": stock_value,
        "low_stock_count": int(low),
    }


def low_stock_count() -> int:
    """How many live products are at or below their minimum (the navigation badge)."""
    return db.session.scalar(select(func.count()).select_from(Stock).where(Stock.is_low)) or 0  # deleted: never low


def daily_movements(days: int = DEFAULT_DAYS, today: date | None = None) -> list[dict[str, Any]]:
    """Units received, issued and adjusted per UTC day over the last `days` days
    (today included), days without movements as zeros."""
    today = today or utcnow().date()
    first = today - timedelta(days=days - 1)
    found = {day["date"]: day for day in statistics_service.daily_totals(first, today)}
    return [
        found.get(key, {"date": key, "in": 0, "out": 0, "adjust": 0})
        for key in ((first + timedelta(days=offset)).isoformat() for offset in range(days))
    ]


def quantity_history(product_id: int, points: int = HISTORY_POINTS) -> list[dict[str, Any]]:
    """A product's stock level after each of its last `points` movements, oldest first."""
    rows = db.session.execute(
        select(StockLog.created_at, StockLog.after_quantity, StockLog.seq)
        .where(StockLog.product_id == product_id)
        .order_by(StockLog.seq.desc())
        .limit(points)
    ).all()
    return [{"at": at, "quantity": quantity, "seq": seq} for at, quantity, seq in reversed(rows)]
