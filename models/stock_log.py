"""The append-only movement ledger: one row per stock change, never updated or deleted."""
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from database import db
from models.types import MYSQL_TABLE_ARGS, BigId, Code, UTCDateTime, utcnow

ACTIONS = {"in": "入库", "out": "出库", "adjust": "调整"}


class StockLog(db.Model):
    __tablename__ = "stock_logs"
    __table_args__ = (
        CheckConstraint("action IN ('in', 'out', 'adjust')", name="action_known"),
        CheckConstraint("after_quantity >= 0 AND before_quantity >= 0", name="quantities_not_negative"),
        Index("ix_stock_logs_product_id_id", "product_id", "id"),
        Index("ix_stock_logs_action_id", "action", "id"),
        Index("ix_stock_logs_operator_id", "operator", "id"),
        Index("ix_stock_logs_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No cascade: products are soft-deleted, and the database refuses to orphan history.
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    action: Mapped[str] = mapped_column(String(10))
    # in/out: the units moved (positive); adjust: after - before (signed).
    quantity: Mapped[int]
    before_quantity: Mapped[int]
    after_quantity: Mapped[int]
    reason: Mapped[str | None] = mapped_column(String(255))
    operator: Mapped[str | None] = mapped_column(String(100))
    # The product's SKU and name as they were at the time of the movement.
    sku: Mapped[str] = mapped_column(Code)
    product_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
