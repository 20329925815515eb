"""One commit per use case: the write transaction every stock and product change runs
in; and the one read snapshot of a list or of `ledger verify`."""
import random
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app, g
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

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


def run_in_write_transaction(work: Callable[[], T], *, commit: bool = True) -> T:
    """Run `work` and commit once (or roll back when `commit` is false, a dry run);
    roll back on any error; run it again after a deadlock or certification conflict,
    with jittered exponential backoff, while `DB_RETRY_BUDGET` seconds last. When they
    are spent the caller gets WriteConflict: a 503 with Retry-After.

    A call made while another is running joins the outer transaction, which alone
    commits: an idempotent request stores its response in the same transaction as
    the change it made. On SQLite the transaction starts with BEGIN IMMEDIATE, so
    concurrent writers queue on the busy timeout instead of failing.
    """
    session = db.session()
    if g.get("write_transaction_open"):
        return _joined(session, work, commit)
    deadline = time.monotonic() + current_app.config["DB_RETRY_BUDGET"]
    attempt = 1
    while True:
        if session.in_transaction():
            session.commit()  # end a read-only transaction so the write lock is taken at BEGIN
        with write_turn():
            session.connection(execution_options={SQLITE_WRITE_OPTION: True})
            g.write_transaction_open = True
            try:
                result = work()
                session.flush()
                if commit:
                    session.commit()
                else:
                    session.rollback()
                return result
            except OperationalError as exc:
                session.rollback()
                if not _is_retryable(exc):
                    raise
                pause = _backoff(attempt)
                if time.monotonic() + pause > deadline:
                    raise WriteConflict(details={"attempts": attempt}) from exc
            except BaseException:
                session.rollback()
                raise
            finally:
                g.write_transaction_open = False
        time.sleep(pause)
        attempt += 1


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
