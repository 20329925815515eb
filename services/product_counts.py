"""Live products per category (`product_counts`), kept in the caller's transaction by
every create, delete and category change: list totals read them instead of counting."""
from sqlalchemy import func, select

from db import db
from db.prepared import CounterUpsert
from models import NO_CATEGORY, ProductCount

_LIVE_PRODUCTS = CounterUpsert(ProductCount.__table__, ("category", "shard"), ("live",))


def live_count(category: str | None = None) -> int:
    """Live products (of one category), from the counts kept with every change. Each has
    one stock row, so this is the stock list's total as well."""
    counted = select(func.coalesce(func.sum(ProductCount.live), 0))
    if category:
        counted = counted.where(ProductCount.category == category)
    return int(db.session.scalar(counted))


def count_live(category: str | None, shard: int, change: int) -> None:
    """Keep `product_counts` in step, in the caller's transaction: `change` products of
    `category` in `shard` (the one of their ids, models/shards.py)."""
    _LIVE_PRODUCTS.run(db.session.connection(), category=category or NO_CATEGORY, shard=shard, live=change)


def categories() -> list[tuple[str, int]]:
    """Categories with live products and how many each has, by name."""
    live = func.sum(ProductCount.live)
    return db.session.execute(
        select(ProductCount.category, live).where(ProductCount.category != NO_CATEGORY)
        .group_by(ProductCount.category).having(live > 0).order_by(ProductCount.category)
    ).all()
