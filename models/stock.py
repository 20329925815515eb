"""One stock row per product: the current count and its thresholds."""
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    and_,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db import db
from models.types import MYSQL_TABLE_ARGS, Label, UTCDateTime, utcnow

if TYPE_CHECKING:
    from models.product import Product


def is_low_level(quantity: int, min_quantity: int) -> bool:
    """At or below a set minimum (a minimum of 0 means no threshold)."""
    return min_quantity > 0 and quantity <= min_quantity


class Stock(db.Model):
    __tablename__ = "stock"
    __table_args__ = (
        # The last guard: no code path, however wrong, can store a negative count.
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("min_quantity >= 0", name="min_quantity_not_negative"),
        Index("ix_stock_location", "location"),
        Index("ix_stock_quantity", "quantity"),
        Index("ix_stock_units_moved", "units_moved"),
        MYSQL_TABLE_ARGS,
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    # 64-bit: levels may reach MAX_STOCK (10^15), past MySQL's 32-bit INT.
    quantity: Mapped[int] = mapped_column(BigInteger, default=0)
    min_quantity: Mapped[int] = mapped_column(default=0)
    max_quantity: Mapped[int | None]
    location: Mapped[str | None] = mapped_column(Label)
    # Kept by the database itself; indexed (below) so the low-stock list reads only low rows.
    shortage: Mapped[int] = mapped_column(BigInteger, Computed("min_quantity - quantity", persisted=True))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Running totals of this product's movements, changed by the same UPDATE as the
    # count (the row is locked already): statistics read them instead of the ledger.
    movements: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_in: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total_out: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    adjust_net: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    units_moved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    product: Mapped["Product"] = relationship(back_populates="stock", lazy="joined", innerjoin=True)

    @hybrid_property
    def is_low(self) -> bool:
        return is_low_level(self.quantity, self.min_quantity)

    @is_low.inplace.expression
    @classmethod
    def _is_low_expression(cls):
        # shortage >= 0 first: a range on its index, then the threshold check.
        return and_(cls.shortage >= 0, cls.min_quantity > 0)


# The low-stock list in its own order (largest shortage first), covering its whole test:
# a page is a short walk of this index, never a sort of every low row.
Index("ix_stock_low_order", Stock.shortage.desc(), Stock.product_id, Stock.min_quantity)
