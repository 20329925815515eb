"""Console login sessions, kept in the database: every worker and every instance reads
the same rows, so a logout (or a revoked key) ends a session everywhere at once, and a
session nobody used for CONSOLE_SESSION_IDLE_MINUTES has ended. The browser's signed
cookie carries only a random token; the table keeps its hash."""
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, select, update

from db import db
from db.reads import PreparedRead
from models import ApiKey, ConsoleSession
from models.types import utcnow
from services.api_key_service import Caller, digest
from services.transaction import run_in_write_transaction

# A session's last use is written at most this often: a page view is not a write.
TOUCH_EVERY = timedelta(minutes=1)


def _idle_limit() -> timedelta:
    return timedelta(minutes=current_app.config["CONSOLE_SESSION_IDLE_MINUTES"])


def start(caller: Caller) -> str:
    """A new session for `caller`; returns the token for the cookie. Sessions idle past
    the limit are removed on the way."""
    token = secrets.token_urlsafe(32)  # 256 random bits
    now = utcnow()

    def work() -> None:
        db.session.execute(delete(ConsoleSession).where(ConsoleSession.last_seen_at < now - _idle_limit()))
        db.session.add(ConsoleSession(token_hash=digest(token), api_key_id=caller.key_id, created_at=now,
                                      last_seen_at=now))

    run_in_write_transaction(work)
    return token


def end(token: str) -> None:
    """End the session of `token` (logout): from now on its cookie is refused everywhere."""
    run_in_write_transaction(
        lambda: db.session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == digest(token))))


def caller_of(token: str) -> Caller | None:
    """Who a live session belongs to; None once it was ended, idle too long, or its key
    revoked. Using it starts the idle time again."""
    now = utcnow()
    row = _LIVE_SESSION.first(token_hash=digest(token), idle_since=now - _idle_limit())
    if row is None:
        return None
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        run_in_write_transaction(lambda: db.session.execute(
            update(ConsoleSession).where(ConsoleSession.id == row["session_id"]).values(last_seen_at=now)))
    return Caller(row["id"], row["name"], row["role"])


_LIVE_SESSION = PreparedRead(
    select(ApiKey.id, ApiKey.name, ApiKey.role, ConsoleSession.id.label("session_id"), ConsoleSession.last_seen_at)
    .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
    .where(ConsoleSession.token_hash == bindparam("token_hash"), ConsoleSession.last_seen_at > bindparam("idle_since"),
           ApiKey.revoked_at.is_(None))
)
