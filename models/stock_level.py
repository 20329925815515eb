"""A product's stock in one warehouse (its level). The product's total stays in `stock`
and changes in the same transaction as the level it sums."""
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, literal_column
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.stock import LOW, SORTED, Counted
from models.types import LIVE, MYSQL_TABLE_ARGS, Code

# The product's columns copied onto its levels, for the warehouse's list in their order.
PRODUCT_SORTED = ("name", "sku")


class StockLevel(Counted, db.Model):
    """The count, the level's own thresholds and its bin (`location`) in that warehouse;
    the product's (in `stock`) apply to its total."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("min_quantity >= 0", name="min_quantity_not_negative"),
        # One warehouse's list (`/api/warehouses/{id}/stock`) in every sort of its own
        # columns, and its low rows, as `/api/stock/` has them (services/pagination.py).
        # Each ends with `product_id`, the tie-breaker: SQLite's indexes of a table with a
        # two-column key end with the rowid, not the key (InnoDB's end with the key anyway).
        Index("ix_stock_levels_live", "warehouse_id", "deleted_at", "product_id", sqlite_where=LIVE),
        *(Index(f"ix_stock_levels_live_{sort}", "warehouse_id", "deleted_at", sort, "product_id", sqlite_where=LIVE)
          for sort in (*SORTED, *PRODUCT_SORTED)),
        Index("ix_stock_levels_low", "warehouse_id", "low", "product_id", sqlite_where=LOW),
        *(Index(f"ix_stock_levels_low_{sort}", "warehouse_id", "low", sort, "product_id", sqlite_where=LOW)
          for sort in SORTED),
        Index("ix_stock_levels_location", "warehouse_id", "location"),
        MYSQL_TABLE_ARGS,
    )

    # The key's order is the lock order: a product's levels by warehouse id.
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), primary_key=True)
    # The product's name and SKU as the product has them (same types, so the same order),
    # written with every rename and SKU change: a warehouse's page by name or SKU walks
    # its own index, where a walk of the products' looked up each one's level here.
    name: Mapped[str] = mapped_column(String(200), server_default="")
    sku: Mapped[str | None] = mapped_column(Code)


# `is_low` as the low-only list's indexes read it.
LOW_LEVELS = StockLevel.low == literal_column("1")
# A warehouse's low levels, largest shortage first: a page is a short walk of this index
# (partial on SQLite: a change of a level that is not low leaves it alone).
Index("ix_stock_levels_low_order", StockLevel.warehouse_id, StockLevel.low, StockLevel.shortage.desc(),
      StockLevel.product_id, sqlite_where=LOW)
