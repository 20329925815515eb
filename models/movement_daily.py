"""Per-day movement totals, kept in the same transaction as each movement, so
statistics over months of history read a few hundred rows instead of the ledger."""
from datetime import date

from sqlalchemy import BigInteger, Date
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.shards import shard_column
from models.types import MYSQL_TABLE_ARGS


class MovementDaily(db.Model):
    """One row per UTC day and shard of the moved product (models/shards.py): a day's
    totals are the sum of its rows."""

    __tablename__ = "movement_daily"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    shard: Mapped[int] = shard_column()
    in_movements: Mapped[int] = mapped_column(BigInteger, default=0)
    in_quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    out_movements: Mapped[int] = mapped_column(BigInteger, default=0)
    out_quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    adjust_movements: Mapped[int] = mapped_column(BigInteger, default=0)
    adjust_quantity: Mapped[int] = mapped_column(BigInteger, default=0)  # signed sum of deltas
    # Transfers move units between warehouses: counted apart, never in the totals in and out.
    transfer_out_movements: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transfer_out_quantity: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transfer_in_movements: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transfer_in_quantity: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The least and greatest ledger id counted in this row (NULL: unknown): where the day's
    # rows lie in id order, so a deep page of the whole log can start at a day (log_service).
    first_id: Mapped[int | None] = mapped_column(BigInteger)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
