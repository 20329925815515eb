"""Console login sessions. The browser's signed cookie holds a random token; the row
(found by the token's hash) is what makes it valid, so ending the row ends the session
for every worker and instance at once: at logout, after the idle time, on key revocation."""
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.types import MYSQL_TABLE_ARGS, BigId, UTCDateTime, utcnow


class ConsoleSession(db.Model):
    __tablename__ = "console_sessions"
    __table_args__ = (
        Index("ix_console_sessions_last_seen_at", "last_seen_at"),  # finding the idle ones to remove
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Hex SHA-256 of the cookie's token: the table alone lets nobody in.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Moved on by use (at most once a minute); idle longer than the limit, the session has ended.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
