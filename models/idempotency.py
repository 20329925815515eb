"""Responses of changes made with an `Idempotency-Key`, kept so a retry replays them."""
from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.types import MYSQL_TABLE_ARGS, BigId, UTCDateTime, utcnow


class IdempotencyRecord(db.Model):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Whose key it is: the API key's id once access control is on, else "public".
    scope: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255).with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql"))
    # SHA-256 of method, path and canonical body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[str] = mapped_column(Text().with_variant(mysql.MEDIUMTEXT(), "mysql"))
    location: Mapped[str | None] = mapped_column(String(255))
    etag: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
