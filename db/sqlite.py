"""SQLite: writers take turns through a kernel lock, and each connection is set up for WAL
with a WAL kept small next to the volume it lives on."""
import fcntl
import os
import signal
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import event, text

from db import db
from db.engine import serves_requests
from db.prepared import PreparedStatement
from utils.exceptions import ServiceUnavailable

# Execution option a write transaction sets so SQLite takes the write lock at BEGIN.
SQLITE_WRITE_OPTION = "sqlite_begin_immediate"
# SQLite's BEGIN for a read (False) and for a write, which takes the write lock at once (True).
_SQLITE_BEGIN = {False: PreparedStatement(text("BEGIN")), True: PreparedStatement(text("BEGIN IMMEDIATE"))}
# SQLite checkpoints the WAL into the database once it holds 1000 pages of 4 KiB, and the
# file is cut back to this size after. On a volume under 16 times that, a sixteenth of it:
# else the WAL could take all the space before its first checkpoint, and a checkpoint
# needs free space to move the WAL's pages into the database, so writes never recovered.
WAL_BOUND_BYTES = 1000 * 4096
VOLUME_SHARE = 16


class SQLiteWriteQueue:
    """Writers of one SQLite file take turns through an flock on a side file.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so under contention
    waiting writers oversleep and throughput collapses; the kernel hands an flock to
    the next waiter the moment it is released. Each process opens its own descriptor
    (flock is per open file), and threads of one process queue on a mutex first.

    A writer waits at most `deadline` seconds (None: as long as it takes) and then
    answers 503: behind a write that holds the file for long (a bulk load), every
    queued request must answer before gunicorn's timeout kills its worker.
    """

    def __init__(self, path: Path, deadline: float | None):
        self.path = path
        self.deadline = deadline
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None

    @contextmanager
    def turn(self):
        started = time.monotonic()
        if not self._mutex.acquire(timeout=-1 if self.deadline is None else self.deadline):
            raise ServiceUnavailable(details={"waited_seconds": self.deadline})
        try:
            if self._pid != os.getpid():  # after a fork, never share the parent's descriptor
                self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
            if self.deadline is None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            elif not _flock_within(self._fd, self.deadline - (time.monotonic() - started)):
                raise ServiceUnavailable(details={"waited_seconds": self.deadline})
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()


def _flock_now(fd: int) -> bool:
    """Take the flock on `fd` if it is free; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class _Expired(Exception):
    """The alarm of `_flock_within` went off."""


def _flock_within(fd: int, seconds: float) -> bool:
    """Take the flock on `fd` within `seconds`; False if it stayed taken. The main thread
    (each request of a sync worker) blocks in the kernel under an alarm, so the lock
    still passes to it the moment it is released; other threads poll every millisecond."""
    waiting_until = time.monotonic() + seconds
    if _flock_now(fd):
        return True
    if threading.current_thread() is not threading.main_thread():
        while time.monotonic() < waiting_until:
            time.sleep(0.001)
            if _flock_now(fd):
                return True
        return False
    waiting = [True]

    def expire(_signum, _frame):
        if waiting[0]:
            raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(waiting_until - time.monotonic(), 0.001))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        waiting[0] = False
        return True
    except _Expired:  # possibly just after the lock was granted: let it go either way
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        waiting[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def wal_bound(directory: Path) -> int:
    """Bytes of WAL at which it is checkpointed, for a database in `directory`."""
    volume = os.statvfs(directory)
    return min(WAL_BOUND_BYTES, volume.f_blocks * volume.f_frsize // VOLUME_SHARE)


def room_for_writes(directory: Path) -> bool:
    """Whether the volume has room for a WAL's worth of writes and their checkpoint."""
    volume = os.statvfs(directory)
    return volume.f_bavail * volume.f_frsize >= wal_bound(directory)


def database_directory() -> Path | None:
    """Where the calling app's SQLite file lives; None for another database or one in memory."""
    return current_app.extensions.get("sqlite_directory")


def write_turn():
    """The calling app's SQLite write queue, or nothing to wait for on other databases."""
    queue = current_app.extensions.get("sqlite_write_queue")
    return queue.turn() if queue else nullcontext()


def _utc_now() -> str:
    """SQL `utc_now()` (models/reservation.py): the current UTC time in the text form
    SQLite's stored datetimes have, to the microsecond."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def register_sqlite_setup(app: Flask) -> None:
    """WAL, busy timeout and explicit BEGIN so concurrent writers queue, not fail."""
    busy_ms = int(app.config["SQLITE_BUSY_TIMEOUT"] * 1000)
    synchronous = app.config["SQLITE_SYNCHRONOUS"]
    if synchronous not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
        raise RuntimeError(f"SQLITE_SYNCHRONOUS must be OFF/NORMAL/FULL/EXTRA, not {synchronous}")

    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "sqlite":
        return
    directory = None
    if engine.url.database and engine.url.database != ":memory:":
        deadline = app.config["SQLITE_BUSY_TIMEOUT"] if serves_requests() else None
        app.extensions["sqlite_write_queue"] = SQLiteWriteQueue(Path(engine.url.database).with_suffix(".write-lock"),
                                                                deadline)
        directory = app.extensions["sqlite_directory"] = Path(engine.url.database).resolve().parent

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record) -> None:
        # Autocommit at the driver level; SQLAlchemy's "begin" event emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        dbapi_connection.create_function("utc_now", 0, _utc_now)
        if directory is not None:
            (page_size,) = cursor.execute("PRAGMA page_size").fetchone()
            pages = max(1, wal_bound(directory) // page_size)
            cursor.execute(f"PRAGMA wal_autocheckpoint = {pages}")
            cursor.execute(f"PRAGMA journal_size_limit = {pages * page_size}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # Prepared: through exec_driver_sql, BEGIN alone cost ~40 µs, inside the write lock.
        _SQLITE_BEGIN[bool(connection.get_execution_options().get(SQLITE_WRITE_OPTION))].run(connection)
