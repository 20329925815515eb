"""Live levels per warehouse (`level_counts`), kept in the caller's transaction wherever
a level is created or a product's deletion reaches its levels: a warehouse's stock
list reads its total here instead of counting its levels."""
from collections import Counter

from sqlalchemy import delete, func, select

from db import db
from db.prepared import CounterUpsert
from models import LevelCount, StockLevel, shard_of
from models.shards import SHARDS

_LIVE_LEVELS = CounterUpsert(LevelCount.__table__, ("warehouse_id", "shard"), ("live",))


def live_levels(warehouse_id: int) -> int:
    """The warehouse's live levels (those of live products), from the counts kept with every change."""
    return int(db.session.scalar(select(func.coalesce(func.sum(LevelCount.live), 0))
                                 .where(LevelCount.warehouse_id == warehouse_id)))


class LevelTally:
    """Levels created (+1) or deleted (-1) by one transaction, added to `level_counts` at
    `write`, row by row in (warehouse, shard) order: transactions that add to several
    rows (batches, imports, a product's deletion) take them in one order, so they cannot
    wait on each other in a cycle."""

    def __init__(self):
        self.rows: Counter[tuple[int, int]] = Counter()

    def add(self, product_id: int, warehouse_id: int, change: int = 1) -> None:
        self.rows[(warehouse_id, shard_of(product_id))] += change

    def write(self, connection) -> None:
        for (warehouse_id, shard), change in sorted(self.rows.items()):
            if change:
                _LIVE_LEVELS.run(connection, warehouse_id=warehouse_id, shard=shard, live=change)
        self.rows.clear()


def count_level(connection, product_id: int, warehouse_id: int) -> None:
    """One level created, counted at once: a change that makes a single level writes a
    single counter row, so there is no order to keep."""
    _LIVE_LEVELS.run(connection, warehouse_id=warehouse_id, shard=shard_of(product_id), live=1)


def recount() -> dict[int, int]:
    """Rebuild `level_counts` from the levels themselves, in the caller's transaction;
    answers each warehouse's count."""
    shard = StockLevel.product_id % SHARDS
    rows = db.session.execute(select(StockLevel.warehouse_id, shard, func.count()).where(
        StockLevel.deleted_at.is_(None)).group_by(StockLevel.warehouse_id, shard)).all()
    db.session.execute(delete(LevelCount))
    tally, counts = LevelTally(), Counter()
    for warehouse_id, number, live in rows:
        tally.rows[(warehouse_id, number)] = live
        counts[warehouse_id] += live
    tally.write(db.session.connection())
    return dict(counts)
