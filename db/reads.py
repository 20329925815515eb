"""Single-row reads without a Session, each on a connection its thread keeps."""
import os
import threading

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import PoolProxiedConnection

from db import db
from db.prepared import Executed, PreparedStatement, as_sqlalchemy_error

READ_ENGINE = "inventory_read_engine"  # app.extensions key of PreparedRead's ReadConnections


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
        raise as_sqlalchemy_error(exc, dialect, None, None, dropped=True) from exc
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
            raise as_sqlalchemy_error(exc, dialect, plan.sql, arguments, dropped) from exc
    return _read(reads, statement, params, many, retry_dropped=False)


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
