"""Products: what is stocked. Deleting one is a soft delete so its ledger survives."""
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db import db
from models.types import LIVE, MYSQL_TABLE_ARGS, Code, Label, UTCDateTime, utcnow

if TYPE_CHECKING:
    from models.stock import Stock

# The list's sorts besides `id`, whose order the indexes on `deleted_at` already have.
SORTED = ("name", "price", "sku", "created_at", "updated_at")
# A category's products by id: its index is in id order (InnoDB's end with the primary key),
# but MariaDB walks every live product by id instead, testing each one's category (32 ms
# against 2 ms at the middle of a category holding an eighth of 100,000 products).
CATEGORY_BY_ID_HINT = "FORCE INDEX (ix_products_category)"


class Product(db.Model):
    """A product; `version` is its optimistic-lock counter and ETag."""

    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_category", "category", "deleted_at"),  # covers the category filter and its count
        Index("ix_products_deleted_at", "deleted_at"),  # counts of live products read the index only
        # Every sort of the list, alone and within a category (services/pagination.py).
        *(Index(f"ix_products_live_{sort}", "deleted_at", sort, sqlite_where=LIVE) for sort in SORTED),
        *(Index(f"ix_products_category_{sort}", "category", "deleted_at", sort, sqlite_where=LIVE) for sort in SORTED),
        Index("ix_products_barcode", "barcode", unique=True),  # a scan finds its product by index
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    category: Mapped[str | None] = mapped_column(Label)
    # NULL once deleted: the SKU is released for a new product; logs keep their copy.
    sku: Mapped[str | None] = mapped_column(Code, unique=True)
    # What a scanner reads (a GTIN or a shop's own code); optional, and like the SKU
    # unique among live products: NULL once deleted.
    barcode: Mapped[str | None] = mapped_column(Code)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every UPDATE (the ORM adds `WHERE version = :old`); the product's ETag.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    stock: Mapped["Stock"] = relationship(back_populates="product", lazy="joined", innerjoin=True)
