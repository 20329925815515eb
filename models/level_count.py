"""Live levels per warehouse, kept in the same transaction as every level created and
every product deleted: a warehouse's stock list reads its total here instead of
counting its levels on their index (100,000 of them: ~11 ms a page on MariaDB)."""
from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.shards import shard_column
from models.types import MYSQL_TABLE_ARGS


class LevelCount(db.Model):
    """Per warehouse and shard of the level's product (models/shards.py): a warehouse's
    count is the sum of its rows. A deleted warehouse's rows stay as they were: its
    list is gone, and its levels keep their rows."""

    __tablename__ = "level_counts"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    warehouse_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    shard: Mapped[int] = shard_column()
    live: Mapped[int] = mapped_column(BigInteger, default=0)
