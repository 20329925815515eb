"""Running totals that every change adds to are split into shards chosen by product, so
changes of different products write different rows: on a Galera cluster two nodes
changing one row at once fail certification, on one server they wait on its lock.
Readers sum the shards."""
from sqlalchemy import SmallInteger
from sqlalchemy.orm import mapped_column

SHARDS = 16


def shard_of(product_id: int) -> int:
    return product_id % SHARDS


def shard_column():
    """The shard half of a totals row's key; rows from before sharding are shard 0."""
    return mapped_column(SmallInteger, primary_key=True, autoincrement=False, server_default="0")
