"""One stock row per product: the current count and its thresholds."""
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    and_,
    literal_column,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db import db
from models.types import LIVE, MYSQL_TABLE_ARGS, Label, UTCDateTime, utcnow

if TYPE_CHECKING:
    from models.product import Product

# The list's sorts of this table's columns besides `product_id`, the order of `ix_stock_live`.
SORTED = ("quantity", "min_quantity", "updated_at")
# The rows at or below their minimum, as the indexes of the low-only list hold them (partial
# on SQLite, which uses such an index only for a query that names the same literal).
LOW = text("low = 1")


def is_low_level(quantity: int, min_quantity: int) -> bool:
    """At or below a set minimum (a minimum of 0 means no threshold)."""
    return min_quantity > 0 and quantity <= min_quantity


class Counted:
    """The columns of a count kept for a place: the product's total (`stock`) and each
    of its levels (`stock_levels`)."""

    # 64-bit: levels may reach MAX_STOCK (10^15), past MySQL's 32-bit INT.
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    # Held by active reservations, past-due ones included until the next write of the
    # product marks them expired (reads leave those out: services/views.py).
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    min_quantity: Mapped[int] = mapped_column(default=0)
    max_quantity: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(Label)
    # Kept by the database itself; indexed (below) so the low-stock list reads only low rows.
    shortage: Mapped[int] = mapped_column(BigInteger, Computed("min_quantity - quantity", persisted=True))
    # `is_low` as a column of its own (computed as it is read, stored only in its
    # indexes): a page of the low rows in any sort is a walk of one index.
    low: Mapped[bool] = mapped_column(Boolean, Computed("min_quantity > 0 AND quantity <= min_quantity", persisted=False))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The product's deletion, copied when it is deleted: the stock lists pick live rows
    # from their table's own indexes instead of looking up each product.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @hybrid_property
    def is_low(self) -> bool:
        return is_low_level(self.quantity, self.min_quantity)

    @is_low.inplace.expression
    @classmethod
    def _is_low_expression(cls):
        # shortage >= 0 first: a range on its index, then the threshold check.
        return and_(cls.shortage >= 0, cls.min_quantity > 0)


class Stock(Counted, db.Model):
    __tablename__ = "stock"
    __table_args__ = (
        # The last guard: no code path, however wrong, can store a negative count.
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("min_quantity >= 0", name="min_quantity_not_negative"),
        Index("ix_stock_location", "location"),
        # The list's sorts of its own columns; by name or SKU it reads the products' indexes.
        Index("ix_stock_live", "deleted_at", sqlite_where=LIVE),
        *(Index(f"ix_stock_live_{sort}", "deleted_at", sort, sqlite_where=LIVE) for sort in SORTED),
        # The same sorts of the low rows only (a deleted product is never low).
        Index("ix_stock_low", "low", sqlite_where=LOW),
        *(Index(f"ix_stock_low_{sort}", "low", sort, sqlite_where=LOW) for sort in SORTED),
        MYSQL_TABLE_ARGS,
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    # Running totals of this product's movements, changed by the same UPDATE as the
    # count (the row is locked already): statistics read them instead of the ledger.
    movements: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_in: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_out: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    adjust_net: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    units_moved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    product: Mapped["Product"] = relationship(back_populates="stock", lazy="joined", innerjoin=True)


# `is_low` as the low-only list's indexes read it.
LOW_ROWS = Stock.low == literal_column("1")


# The low-stock list in its own order (largest shortage first), covering its whole test:
# a page is a short walk of this index, never a sort of every low row.
Index("ix_stock_low_order", Stock.shortage.desc(), Stock.product_id, Stock.min_quantity)
# The busiest products of all time in statistics' order: the first ten entries.
Index("ix_stock_units_moved", Stock.units_moved.desc(), Stock.product_id)
