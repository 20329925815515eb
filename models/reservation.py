"""Reservations (预留): units of one level promised to an order or cart until they are
fulfilled, released or their time runs out. What a level holds is also kept on the
level (`reserved`), changed under the same lock as its count."""
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

from db import db
from models.types import MYSQL_TABLE_ARGS, BigId, UTCDateTime, utcnow

STATUSES = {"active": "有效", "fulfilled": "已出库", "released": "已释放", "expired": "已过期"}


class Reservation(db.Model):
    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint(f"status IN ({', '.join(repr(status) for status in STATUSES)})", name="status_known"),
        # What a level (or a product) still holds past its time: the reads subtract it,
        # the next write of that product marks it expired.
        Index("ix_reservations_holds", "product_id", "status", "expires_at", "warehouse_id"),
        Index("ix_reservations_status_expires_at", "status", "expires_at"),
        Index("ix_reservations_reference_id", "reference", "id"),
        Index("ix_reservations_warehouse_id_id", "warehouse_id", "id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    # What it still holds: a partial fulfilment lowers it, the end of a reservation keeps it.
    quantity: Mapped[int] = mapped_column(BigInteger)
    fulfilled_quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    reference: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="active")
    operator: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class utc_now(FunctionElement):  # noqa: N801 - named like the SQL function it is
    """The current UTC time as the database compares it with stored times: MySQL's
    UTC_TIMESTAMP(6); on SQLite a function each connection gets (db/sqlite.py), with
    microseconds as the times are stored."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utc_now)
def _utc_now_sqlite(element, compiler, **kw) -> str:
    return "utc_now()"


@compiles(utc_now, "mysql")
def _utc_now_mysql(element, compiler, **kw) -> str:
    return "UTC_TIMESTAMP(6)"

