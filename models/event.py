"""The change feed (an outbox): one row per change, written in the change's transaction.

`id` is taken when the row is inserted, which on MySQL/MariaDB is not the order in which
transactions commit. `position` is the feed's order instead: it is given to committed
rows only, by one sequencer at a time (services/event_service.py), so a reader that has
seen position n can never later find a committed event below it (docs/events.md).
"""
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.types import MYSQL_TABLE_ARGS, BigId, UTCDateTime, utcnow

EVENT_TYPES = (
    "stock.changed", "stock.low",
    "reservation.created", "reservation.fulfilled", "reservation.released", "reservation.expired",
    "product.created", "product.updated", "product.deleted",
)


class Event(db.Model):
    __tablename__ = "events"
    __table_args__ = (
        # Unique, and NULL (not yet sequenced) for any number of rows: the sequencer finds
        # those at the index's NULL end, the feed reads the rest in order.
        Index("ix_events_position", "position", unique=True),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position: Mapped[int | None] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    warehouse_id: Mapped[int | None] = mapped_column(BigInteger)
    # The event's `data` as JSON text, written once and served as stored.
    data: Mapped[str] = mapped_column(Text)


class EventSequencer(db.Model):
    """One row: the last position handed out. Locking it makes sequencers take turns."""

    __tablename__ = "event_sequencer"
    __table_args__ = (MYSQL_TABLE_ARGS,)

    id: Mapped[int] = mapped_column(primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger, default=0)
