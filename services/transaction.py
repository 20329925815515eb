"""One commit per use case: the write transaction every stock and product change runs
in; and the one read snapshot of a list or of `ledger verify`."""
import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g, has_app_context
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db import db
from db.galera import error_code
from db.sqlite import SQLITE_WRITE_OPTION, write_turn
from utils.exceptions import WriteConflict

T = TypeVar("T")

# MySQL/MariaDB: 1213 deadlock, and on a Galera cluster a certification conflict (two
# nodes changed the same row at once: the later one is refused at COMMIT) or a
# brute-force abort by a replicated write; 1205 lock wait timeout. Each rolls the whole
# transaction back, so running the use case again is safe. Not 1180 (an error during
# COMMIT) nor 1047 (node outside the primary component): whether the write reached the
# cluster is unknown there, so only the client may retry, with its Idempotency-Key.
RETRYABLE_MYSQL_ERRORS = {1205, 1213}
FIRST_BACKOFF = 0.005  # seconds before the second attempt; doubles, up to MAX_BACKOFF
MAX_BACKOFF = 0.4

SNAPSHOT_READ = text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def begin_snapshot() -> None:
    """Start the request's read transaction so that all it reads comes from one
    snapshot: a list's total and its page (a deep page is read from the far end,
    counted from that total), or everything `ledger verify` holds together. MySQL at
    READ COMMITTED gives each statement its own, so this read-only transaction asks
    for REPEATABLE READ; SQLite's read transaction is one already.

    `SET TRANSACTION` (no SESSION) applies to the next transaction only: one round
    trip, where switching the connection's level costs four (set, commit, and both
    again when it goes back to the pool)."""
    if not db.session().in_transaction() and db.session.get_bind().dialect.name == "mysql":
        db.session.execute(SNAPSHOT_READ)


def write_connection() -> Connection:
    """The connection of the write transaction under way, kept for it by
    `run_in_write_transaction`: the session's own lookup costs as much as a short
    statement, and a stock movement runs eight. Outside one, the session's connection."""
    return g.get("write_connection") or db.session.connection()


def safe_rollback() -> None:
    """End the session's transaction after a failure without failing again: the
    connection may be the very thing that failed, and a Galera node outside the primary
    component refuses even ROLLBACK (1047)."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - whatever failed, the session is closed instead
        db.session.close()


def _is_retryable(exc: OperationalError) -> bool:
    return error_code(exc) in RETRYABLE_MYSQL_ERRORS


def _backoff(attempt: int) -> float:
    """Full jitter: a random pause up to an exponentially growing cap, so writers that
    collided once spread out instead of colliding again in step."""
    return random.uniform(0, min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)))


def run_in_write_transaction(work: Callable[[], T], *, commit: bool = True, session_free: bool = False) -> T:
    """Run `work` and commit once (or roll back when `commit` is false, a dry run);
    roll back on any error; run it again after a deadlock or certification conflict,
    with jittered exponential backoff, while `DB_RETRY_BUDGET` seconds last. When they
    are spent the caller gets WriteConflict: a 503 with Retry-After.

    A call made while another is running joins the outer transaction, which alone
    commits: an idempotent request stores its response in the same transaction as
    the change it made. On SQLite the transaction starts with BEGIN IMMEDIATE, so
    concurrent writers queue on the busy timeout instead of failing.

    `session_free` work writes only through `write_connection()`, never through the ORM
    session: it then runs on a pooled connection of its own, without the session's
    transaction around it (half the cost of an empty write transaction, ~35 µs: stock
    movements are the hottest writes). Using the session inside such work raises.
    """
    if g.get("write_connection") is not None:
        return _joined(db.session(), work, commit)
    transaction = _OwnConnection() if session_free else _SessionTransaction()
    deadline = time.monotonic() + current_app.config["DB_RETRY_BUDGET"]
    attempt = 1
    while True:
        with write_turn():
            g.write_connection = transaction.begin()
            try:
                result = work()
                transaction.end(commit)
                return result
            except OperationalError as exc:
                transaction.abandon()
                if not _is_retryable(exc):
                    raise
                pause = _backoff(attempt)
                if time.monotonic() + pause > deadline:
                    raise WriteConflict(details={"attempts": attempt}) from exc
            except BaseException:
                transaction.abandon()
                raise
            finally:
                g.write_connection = None
        time.sleep(pause)
        attempt += 1


class _SessionTransaction:
    """A write transaction of the request's ORM session."""

    def __init__(self):
        self.session = db.session()

    def begin(self) -> Connection:
        if self.session.in_transaction():
            self.session.commit()  # end a read-only transaction so the write lock is taken at BEGIN
        return self.session.connection(execution_options={SQLITE_WRITE_OPTION: True})

    def end(self, commit: bool) -> None:
        self.session.flush()
        if commit:
            self.session.commit()
        else:
            self.session.rollback()

    def abandon(self) -> None:
        self.session.rollback()


class _OwnConnection:
    """A write transaction on a pooled connection of its own, apart from the session."""

    connection: Connection

    def begin(self) -> Connection:
        if db.session.registry.has() and db.session().in_transaction():
            db.session.commit()  # as a session's write would: any use of it inside the work then begins anew
        self.connection = db.engine.connect().execution_options(**{SQLITE_WRITE_OPTION: True})
        try:
            self.connection.begin()
        except BaseException:
            self.connection.close()
            raise
        g.session_free_write = True
        return self.connection

    def end(self, commit: bool) -> None:
        if commit:
            self.connection.commit()
        else:
            self.connection.rollback()
        self._close()

    def abandon(self) -> None:
        try:
            if self.connection.in_transaction():
                self.connection.rollback()
            else:  # a COMMIT the database refused: SQLAlchemy counts the transaction ended, it is open
                self.connection.connection.dbapi_connection.rollback()
        except Exception:  # noqa: BLE001 - a dropped connection: closing it is all that is left
            pass
        self._close()

    def _close(self) -> None:
        g.session_free_write = False
        self.connection.close()


@event.listens_for(Session, "after_begin")
def _refuse_session_inside_session_free_write(session, transaction, connection) -> None:
    """The session's transaction would be apart from the write under way (on SQLite it
    would wait for the write lock that write holds): a bug in the work, never a state
    to go on from."""
    if has_app_context() and g.get("session_free_write"):
        raise RuntimeError("the ORM session was used inside a session-free write transaction")


def _joined(session, work: Callable[[], T], commit: bool) -> T:
    """Inside an outer transaction; a dry run undoes itself with a savepoint."""
    if commit:
        result = work()
        session.flush()
        return result
    savepoint = session.begin_nested()
    try:
        return work()
    finally:
        savepoint.rollback()
