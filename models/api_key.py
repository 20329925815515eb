"""API keys: who may call the service, and with which role. Only a hash is stored."""
from datetime import datetime

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.types import MYSQL_TABLE_ARGS, UTCDateTime, utcnow

ROLES = ("viewer", "operator", "admin")  # each role can do everything the ones before it can


class ApiKey(db.Model):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'operator', 'admin')", name="role_known"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Shown in logs as the operator of every movement made with this key.
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # The first characters of the key: enough to tell keys apart, useless to an attacker.
    prefix: Mapped[str] = mapped_column(String(16))
    # Hex SHA-256 of the whole key. The key is 256 random bits, so a fast hash is
    # enough: nobody can guess their way back from it.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
