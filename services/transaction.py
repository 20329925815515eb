"""One commit per use case: the write transaction every stock and product change runs
in; and the one read snapshot of a list or of `ledger verify`."""
from collections.abc import Callable
from typing import TypeVar

from flask import g
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db import db
from db.sqlite import SQLITE_WRITE_OPTION, write_turn

T = TypeVar("T")

# MySQL/MariaDB: 1213 deadlock, 1205 lock wait timeout. Both roll the whole
# transaction back, so running the use case again is safe.
RETRYABLE_MYSQL_ERRORS = {1205, 1213}
MAX_ATTEMPTS = 3

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


def _is_retryable(exc: OperationalError) -> bool:
    args = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in RETRYABLE_MYSQL_ERRORS


def run_in_write_transaction(work: Callable[[], T], *, commit: bool = True) -> T:
    """Run `work` and commit once (or roll back when `commit` is false, a dry run);
    roll back on any error; retry a deadlock victim.

    A call made while another is running joins the outer transaction, which alone
    commits: an idempotent request stores its response in the same transaction as
    the change it made. On SQLite the transaction starts with BEGIN IMMEDIATE, so
    concurrent writers queue on the busy timeout instead of failing.
    """
    session = db.session()
    if g.get("write_transaction_open"):
        return _joined(session, work, commit)
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
                if attempt == MAX_ATTEMPTS or not _is_retryable(exc):
                    raise
            except BaseException:
                session.rollback()
                raise
            finally:
                g.write_transaction_open = False
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
