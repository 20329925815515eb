"""Live products per category (`product_counts`), kept in the caller's transaction by
every create, delete and category change: list totals read them instead of counting."""
from sqlalchemy import func, select

from db import db
from db.prepared import CounterUpsert
from models import NO_CATEGORY, ProductCount

_LIVE_PRODUCTS = CounterUpsert(ProductCount.__table__, "category", ("live",))


def live_count(category: str | None = None) -> int:
    """Live products (of one category), from the counts kept with every change. Each has
    one stock row, so this is the stock list's total as well."""
    counted = select(func.coalesce(func.sum(ProductCount.live), 0))
    if category:
        counted = counted.where(ProductCount.category == category)
    return int(db.session.scalar(counted))


def count_live(category: str | None, change: int) -> None:
    """Keep `product_counts` in step, in the caller's transaction (also the seed's bulk insert)."""
    _LIVE_PRODUCTS.run(db.session.connection(), category=category or NO_CATEGORY, live=change)
