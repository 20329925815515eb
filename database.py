"""The database handle, per-dialect connection setup and race-free schema creation."""
import fcntl
import os
import signal
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import click
from flask import Flask, current_app
from flask_migrate import Migrate, upgrade
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Executable,
    MetaData,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import PoolProxiedConnection

from utils.exceptions import ServiceUnavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Objects keep the values their own transaction wrote after commit: a stock change
# answers the level it produced, not a re-read that already holds later changes.
class InventorySQLAlchemy(SQLAlchemy):
    """Flask-SQLAlchemy, ending each request's session only when the request made one.
    Single-row reads run on their own connections (PreparedRead) and never do, and
    `scoped_session.remove()` without a session raises and catches a KeyError: ~11k
    instructions, 1.5 % of a product read."""

    def _teardown_session(self, exc: BaseException | None) -> None:
        if self.session.registry.has():
            super()._teardown_session(exc)


db = InventorySQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

READ_ENGINE = "inventory_read_engine"  # app.extensions key of PreparedRead's ReadConnections
# Execution option a write transaction sets so SQLite takes the write lock at BEGIN.
SQLITE_WRITE_OPTION = "sqlite_begin_immediate"


def serves_requests() -> bool:
    """False under a `flask` command other than `run` (db upgrade, seed, ledger verify…):
    its long statements and waits are its work, so the limits that make a request answer
    503 before gunicorn's timeout do not apply to it."""
    command = click.get_current_context(silent=True)
    return command is None or command.info_name == "run"


def engine_options(config: dict) -> dict:
    """Engine options for the configured database's dialect."""
    options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
    backend = make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()
    # The pool's ROLLBACK when a connection comes back (SQLAlchemy's default) stays, though
    # most returns follow a COMMIT: after a COMMIT the database refused, the connection
    # comes back with its transaction still open (tests/test_prepared_statements.py).
    if backend == "sqlite":
        options["pool_pre_ping"] = False  # a file does not drop connections; saves a query per request
    if backend == "mysql":
        # Row locks without gap locks: fewer needless waits and deadlocks.
        options.setdefault("isolation_level", "READ COMMITTED")
        options.setdefault("pool_size", config["DB_POOL_SIZE"])
        options.setdefault("max_overflow", config["DB_MAX_OVERFLOW"])
        options.setdefault("pool_timeout", config["DB_POOL_TIMEOUT"])
        connect_args = {"charset": "utf8mb4", "connect_timeout": config["DB_CONNECT_TIMEOUT"]}
        if serves_requests():
            connect_args |= {"read_timeout": config["DB_READ_TIMEOUT"], "write_timeout": config["DB_READ_TIMEOUT"]}
        options.setdefault("connect_args", connect_args)
    return options


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


def write_turn():
    """The calling app's SQLite write queue, or nothing to wait for on other databases."""
    queue = current_app.extensions.get("sqlite_write_queue")
    return queue.turn() if queue else nullcontext()


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
    if engine.url.database and engine.url.database != ":memory:":
        deadline = app.config["SQLITE_BUSY_TIMEOUT"] if serves_requests() else None
        app.extensions["sqlite_write_queue"] = SQLiteWriteQueue(Path(engine.url.database).with_suffix(".write-lock"),
                                                                deadline)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record) -> None:
        # Autocommit at the driver level; SQLAlchemy's "begin" event emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        # Prepared: through exec_driver_sql, BEGIN alone cost ~40 µs, inside the write lock.
        _SQLITE_BEGIN[bool(connection.get_execution_options().get(SQLITE_WRITE_OPTION))].run(connection)


class Executed(NamedTuple):
    """What a prepared statement gave back: its rows (column name → value), the rows it
    changed, and the id of the row it inserted."""
    rows: list[dict]
    rowcount: int
    lastrowid: int | None


@dataclass(frozen=True)
class _Plan:
    """A statement compiled for one driver: its SQL, how values go in, how rows come out."""
    sql: str
    order: tuple[str, ...] | None  # parameter names in SQL order (None: the driver takes them by name)
    fixed: dict  # literals in the statement (`quantity >= 0`), bound parameters too
    param_converters: dict  # parameter name → the column type's conversion for the driver
    names: tuple[str, ...]  # selected column names
    column_converters: tuple  # the column types' conversions of what the driver returns

    def arguments(self, params: dict):
        if self.fixed:
            params = {**self.fixed, **params}
        if self.param_converters:
            params = {name: self.param_converters[name](value) if name in self.param_converters else value
                      for name, value in params.items()}
        return tuple(params[name] for name in self.order) if self.order is not None else params

    def executed(self, cursor, arguments, many: bool) -> Executed:
        cursor.execute(self.sql, arguments)
        try:  # a kept SQLite connection must not be left with an unfinished statement
            rows = (cursor.fetchall() if many else cursor.fetchmany(1)) if self.names else ()
            return Executed(
                rows=[{name: convert(value) if convert else value
                       for name, convert, value in zip(self.names, self.column_converters, row)} for row in rows],
                rowcount=cursor.rowcount, lastrowid=cursor.lastrowid)
        finally:
            cursor.close()


class PreparedStatement:
    """A Core statement compiled once per database driver and run straight on a DBAPI
    cursor: the hottest reads and every statement of a stock movement.

    Executing a cached Core statement still builds its cache key, an execution
    context and a result object on every call: on SQLite that is ~80 µs around a
    ~10 µs query, and a stock movement runs seven of them while it holds the write
    lock. This keeps the SQL generated from the models and each column's own
    conversions both ways (UTC times, dates, Decimal prices, booleans).

    Driver errors are raised as SQLAlchemy's, after a dropped connection has been
    invalidated, so deadlock retries and 503s on an outage work as for any query.
    """

    def __init__(self, statement: Executable | None = None):
        self.statement = statement
        self._plans: dict[tuple, _Plan] = {}  # per database driver

    def build(self, dialect: Dialect) -> Executable:
        """The statement to compile for this database."""
        return self.statement

    def plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get((dialect.name, dialect.driver))
        if plan is None:
            statement = self.build(dialect)
            compiled = statement.compile(dialect=dialect)
            binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()}
            selected = statement.selected_columns if isinstance(statement, Select) else ()
            plan = _Plan(
                sql=str(compiled),
                order=compiled.positiontup,
                fixed={name: bind.value for name, bind in compiled.binds.items() if not bind.required},
                param_converters={name: convert for name, convert in binds.items() if convert},
                names=tuple(column.key for column in selected),
                column_converters=tuple(
                    column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected),
            )
            self._plans[(dialect.name, dialect.driver)] = plan
        return plan

    def run(self, connection: Connection, **params) -> Executed:
        """Run inside `connection`'s transaction, exactly as `connection.execute` would."""
        plan = self.plan(connection.dialect)
        arguments = plan.arguments(params)
        proxied = connection.connection
        cursor = proxied.cursor()
        try:
            return plan.executed(cursor, arguments, many=True)
        except connection.dialect.loaded_dbapi.Error as exc:
            dropped = connection.dialect.is_disconnect(exc, proxied.dbapi_connection, cursor)
            if dropped:  # the others in the pool are as old: start a fresh pool, as SQLAlchemy does
                connection.invalidate(exc)  # with its cursor: mysqlclient's close() would fail again
                connection.engine.dispose()
            else:
                cursor.close()
            raise _as_sqlalchemy(exc, connection.dialect, plan.sql, arguments, dropped) from exc


# SQLite's BEGIN for a read (False) and for a write, which takes the write lock at once (True).
_SQLITE_BEGIN = {False: PreparedStatement(text("BEGIN")), True: PreparedStatement(text("BEGIN IMMEDIATE"))}


class PreparedRead(PreparedStatement):
    """A prepared SELECT run on a connection of its own (`ReadConnections`), without a
    Session: the single-row reads (a product, its stock, its history, an API key). One
    statement is atomic on its own, so no transaction is opened around it (see
    `register_read_engine`). A connection the server dropped is replaced and the read
    repeated once.
    """

    def first(self, **params) -> dict | None:
        """The first row as a dict of column name → value, or None."""
        rows = self._read(params, many=False)
        return rows[0] if rows else None

    def all(self, **params) -> list[dict]:
        """Every row, each a dict of column name → value."""
        return self._read(params, many=True)

    def _read(self, params: dict, many: bool) -> list[dict]:
        return _read(current_app.extensions[READ_ENGINE], self, params, many, retry_dropped=True).rows


class ReadConnections:
    """Where PreparedRead runs: one connection per thread, taken from `engine`'s pool
    once and then kept, detached from the pool. A checkout and return through the pool
    cost ~60k instructions, more than a single-row read from SQLite itself. A forked
    process takes its own; a connection that failed is closed and replaced."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._kept = threading.local()
        # An in-memory SQLite database lives in the one connection its pool hands out,
        # so that one stays the pool's (and is shared with the sessions).
        self._detach = engine.dialect.name != "sqlite" or engine.url.database not in (None, "", ":memory:")

    def connection(self) -> PoolProxiedConnection:
        kept = self._kept
        if getattr(kept, "pid", None) != os.getpid():
            connection = self.engine.raw_connection()
            if self._detach:
                connection.detach()  # closing it now closes it for real
            kept.connection, kept.pid = connection, os.getpid()
        return kept.connection

    def discard(self) -> None:
        """Close this thread's connection, if this process opened it. An in-memory
        database's one connection is only let go: closing it would hand it back to its
        pool, which rolls back whatever a session is doing on it."""
        if getattr(self._kept, "pid", None) == os.getpid():
            connection, self._kept.pid = self._kept.connection, None
            if self._detach:
                connection.close()


def _read(reads: ReadConnections, statement: PreparedStatement, params: dict, many: bool,
          retry_dropped: bool) -> Executed:
    """Run one read on the thread's read connection. A connection the server dropped (a
    restart, an idle timeout) is replaced and, once, the read is run again on the new one."""
    dialect = reads.engine.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        connection = reads.connection()
    except dbapi_error as exc:  # the server is unreachable: raised as SQLAlchemy's, so it answers 503
        raise _as_sqlalchemy(exc, dialect, None, None, dropped=True) from exc
    plan = statement.plan(dialect)  # after the first connect, which tells the dialect the server's version
    arguments = plan.arguments(params)
    cursor = connection.cursor()
    try:
        return plan.executed(cursor, arguments, many)
    except dbapi_error as exc:
        dropped = dialect.is_disconnect(exc, connection.dbapi_connection, cursor)
        if not dropped:
            cursor.close()  # on a dropped connection mysqlclient's close() would fail again
        reads.discard()
        if not (dropped and retry_dropped):
            raise _as_sqlalchemy(exc, dialect, plan.sql, arguments, dropped) from exc
    return _read(reads, statement, params, many, retry_dropped=False)


def _as_sqlalchemy(exc: Exception, dialect: Dialect, sql: str | None, arguments, dropped: bool) -> DBAPIError:
    """A driver error as SQLAlchemy raises it (OperationalError, IntegrityError, …)."""
    return DBAPIError.instance(sql, arguments, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped,
                               dialect=dialect)


def register_read_engine(app: Flask) -> None:
    """Where PreparedRead runs. On MySQL, connections of its own in autocommit mode,
    with no ping before each use and no ROLLBACK after it: one round trip per read
    instead of three (a dropped connection is instead caught and the read repeated,
    which is safe for a read). SQLite reads a local file: the main engine serves, its
    connections in autocommit at the driver level (`register_sqlite_setup`)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "mysql":
        options = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "isolation_level": "AUTOCOMMIT",
                   "pool_pre_ping": False, "pool_reset_on_return": None}
        reads = create_engine(engine.url, **options)
        event.listen(engine, "engine_disposed", lambda _engine: reads.dispose())
        engine = reads
    app.extensions[READ_ENGINE] = ReadConnections(engine)


def close_pooled_connections(app: Flask) -> None:
    """Close the connections every pool of the app holds (the read pool goes with the
    main engine): a process about to fork must not hand its connections to children.
    Any other WSGI app served with this config (the benchmark's bare endpoint) has none."""
    if "sqlalchemy" not in getattr(app, "extensions", {}):
        return
    app.extensions[READ_ENGINE].discard()
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


class CounterUpsert(PreparedStatement):
    """Add to the counters of the row with this `key`, creating it when missing: one
    statement, so concurrent transactions never race to create the row. The upsert is
    written in each database's own syntax, which SQLAlchemy 2.0 does not cache: compiled
    on every execution, it cost more than the rest of a stock movement's SQL."""

    def __init__(self, table: Table, key: str, counters: tuple[str, ...]):
        super().__init__()
        self.table, self.key, self.counters = table, key, counters

    def build(self, dialect: Dialect) -> Executable:
        table, counters = self.table, self.counters
        values = {self.key: bindparam(self.key), **{name: bindparam(name) for name in counters}}
        if dialect.name == "mysql":
            inserting = mysql.insert(table).values(values)
            return inserting.on_duplicate_key_update({name: table.c[name] + inserting.inserted[name] for name in counters})
        inserting = sqlite.insert(table).values(values)
        return inserting.on_conflict_do_update(
            index_elements=[table.c[self.key]], set_={name: table.c[name] + inserting.excluded[name] for name in counters})


@contextmanager
def _schema_lock(engine: Engine):
    """Serialise schema creation across processes starting at the same moment."""
    if engine.dialect.name == "mysql":
        with engine.connect() as connection:
            connection.execute(text("SELECT GET_LOCK('inventory_schema', 120)"))
            try:
                yield
            finally:
                connection.execute(text("SELECT RELEASE_LOCK('inventory_schema')"))
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        with open(Path(database).with_suffix(".schema-lock"), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            yield
        return
    yield


def refresh_planner_statistics() -> None:
    """Let the query planner see the data as it now is (after a bulk load, say), so it
    picks the selective index for joins such as the low-stock list."""
    with db.engine.begin() as connection:
        if connection.dialect.name == "mysql":
            connection.execute(text("ANALYZE TABLE products, stock, stock_logs"))
        else:
            connection.execute(text("ANALYZE"))


def create_schema(app: Flask) -> None:
    """Bring the schema up to date at start-up, under a lock, so several gunicorn
    workers starting at once on a fresh database never race. Migrations by default;
    `SCHEMA_SETUP=create_all` (the test suite) builds the tables straight from the models."""
    with app.app_context():
        with _schema_lock(db.engine):
            if app.config["SCHEMA_SETUP"] == "create_all":
                db.create_all()
            else:
                upgrade(directory=str(MIGRATIONS_DIR))
            if db.engine.dialect.name == "sqlite":
                with db.engine.begin() as connection:
                    connection.execute(text("PRAGMA optimize"))  # refreshes stale planner statistics, cheaply
