"""The append-only movement ledger: one row per stock change, never updated or deleted.

Each row carries its per-product sequence number and a SHA-256 hash over its own
content and the previous row's hash, so any later edit or deletion is detectable.
"""
import hashlib
import json
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.types import MYSQL_TABLE_ARGS, BigId, Code, Label, UTCDateTime, utcnow

ACTIONS = {"in": "入库", "out": "出库", "adjust": "调整", "transfer_out": "调出", "transfer_in": "调入"}
# A transfer's two rows move units between a product's levels; its total stays.
TRANSFER_ACTIONS = ("transfer_out", "transfer_in")
# How each action moves the level it names (a `quantity` of adjust is already signed).
LEVEL_SIGN = {"in": 1, "out": -1, "adjust": 1, "transfer_out": -1, "transfer_in": 1}
GENESIS_HASH = "0" * 64
# Rows of version 2 hash their warehouse fields too, version 3 also `reservation_id`;
# rows written before keep the version (and hash) they were written with.
HASH_VERSION = 3
# The canonical JSON of a row's content. One encoder for every hash: `json.dumps` with
# options builds a new one per call (about 1 µs of the 8 µs a row's hash took here).
_CANONICAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class StockLog(db.Model):
    __tablename__ = "stock_logs"
    __table_args__ = (
        CheckConstraint(f"action IN ({', '.join(repr(action) for action in ACTIONS)})", name="action_known"),
        CheckConstraint("after_quantity >= 0 AND before_quantity >= 0", name="quantities_not_negative"),
        CheckConstraint("level_after >= 0 AND level_before >= 0", name="levels_not_negative"),
        UniqueConstraint("product_id", "seq", name="uq_stock_logs_product_id_seq"),
        Index("ix_stock_logs_product_id_id", "product_id", "id"),
        # A product's rows in a time range, read off the index alone: a product's
        # statistics, and its rows outside a range when the busiest products of a long
        # range are found from the running totals (services/top_products.py).
        Index("ix_stock_logs_product_id_created_at", "product_id", "created_at", "action", "quantity"),
        Index("ix_stock_logs_action_id", "action", "id"),
        Index("ix_stock_logs_operator_id", "operator", "id"),
        Index("ix_stock_logs_warehouse_id_id", "warehouse_id", "id"),
        # Only transfers' rows have one: on SQLite the others cost the index nothing.
        Index("ix_stock_logs_transfer_id", "transfer_id", sqlite_where=text("transfer_id IS NOT NULL")),
        Index("ix_stock_logs_reservation_id", "reservation_id", sqlite_where=text("reservation_id IS NOT NULL")),
        # Time ranges (statistics' partial days, the busiest products of a range) read the
        # index alone: it holds what they add up.
        Index("ix_stock_logs_created_at", "created_at", "action", "quantity", "product_id"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # No cascade: products are soft-deleted, and the database refuses to orphan history.
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="RESTRICT"))
    # 1, 2, 3 … per product, assigned under the stock row lock, so gapless.
    seq: Mapped[int]
    action: Mapped[str] = mapped_column(String(16))
    # in/out: the units moved (positive); adjust: after - before (signed).
    quantity: Mapped[int] = mapped_column(BigInteger)
    before_quantity: Mapped[int] = mapped_column(BigInteger)
    after_quantity: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(255))
    # Who made the change: the API key's name when one was used, else what the client sent.
    operator: Mapped[str | None] = mapped_column(Label)  # filtered by exact value
    # With an API key, the person the client named in `operator` (a shared terminal's user).
    on_behalf_of: Mapped[str | None] = mapped_column(String(100))
    # The product's SKU and name as they were at the time of the movement.
    sku: Mapped[str] = mapped_column(Code)
    product_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The warehouse whose level moved, its code as it was, and that level before and
    # after (`before_quantity`/`after_quantity` stay the product's total). Rows from
    # before warehouses existed were moved into the default warehouse, level = total.
    warehouse_id: Mapped[int | None] = mapped_column(ForeignKey("warehouses.id", ondelete="RESTRICT"))
    warehouse_code: Mapped[str | None] = mapped_column(Code)
    level_before: Mapped[int | None] = mapped_column(BigInteger)
    level_after: Mapped[int | None] = mapped_column(BigInteger)
    # Shared by the two rows of one transfer (transfer_out, then transfer_in).
    transfer_id: Mapped[str | None] = mapped_column(String(32))
    # The reservation an `out` row fulfilled.
    reservation_id: Mapped[int | None] = mapped_column(ForeignKey("reservations.id", ondelete="RESTRICT"))
    hash_version: Mapped[int] = mapped_column(SmallInteger, default=HASH_VERSION, server_default="1")

    def content_hash(self) -> str:
        return chain_hash(self)


# Newest first, narrow: a deep page of the movement log walks this instead of the wide
# rows of the clustered primary key (MySQL does not choose it by itself; see NEWEST_FIRST_HINT).
Index("ix_stock_logs_id_desc", StockLog.id.desc())
NEWEST_FIRST_HINT = "FORCE INDEX (ix_stock_logs_id_desc)"


def chain_hash(entry) -> str:
    """SHA-256 (hex) over a log entry's canonical content and its `prev_hash`.

    `entry` is a StockLog or a row with the same column names, so verification
    can stream plain rows.
    """
    content = [
        entry.product_id, entry.seq, entry.action, entry.quantity, entry.before_quantity,
        entry.after_quantity, entry.reason, entry.operator, entry.sku, entry.product_name,
        entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), entry.prev_hash,
    ]
    # Appended only when present, so rows written before the field existed keep their hash.
    if entry.on_behalf_of is not None:
        content.append(entry.on_behalf_of)
    if entry.hash_version >= 2:
        content += [entry.hash_version, entry.warehouse_id, entry.warehouse_code, entry.level_before,
                    entry.level_after, entry.transfer_id]
    if entry.hash_version >= 3:
        content.append(entry.reservation_id)
    return hashlib.sha256(_CANONICAL_JSON.encode(content).encode("utf-8")).hexdigest()
