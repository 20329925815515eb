"""Statements compiled once per database driver and run straight on a DBAPI cursor."""
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, Dialect, Executable, Select, Table, bindparam, func
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import DBAPIError


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
    column_converters: tuple[tuple[str, Callable], ...]  # (name, conversion) of the columns that need one

    def arguments(self, params: dict):
        if self.fixed:
            params = {**self.fixed, **params}
        if self.param_converters:
            params = {name: self.param_converters[name](value) if name in self.param_converters else value
                      for name, value in params.items()}
        return [params[name] for name in self.order] if self.order is not None else params

    def executed(self, cursor, arguments, many: bool) -> Executed:
        cursor.execute(self.sql, arguments)
        try:  # a kept SQLite connection must not be left with an unfinished statement
            rows = []
            if self.names:
                for values in cursor.fetchall() if many else cursor.fetchmany(1):
                    row = dict(zip(self.names, values))
                    for name, convert in self.column_converters:
                        row[name] = convert(row[name])
                    rows.append(row)
            return Executed(rows, cursor.rowcount, cursor.lastrowid)
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
                    (column.key, convert) for column in selected
                    if (convert := column.type.dialect_impl(dialect).result_processor(dialect, None))),
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
            raise as_sqlalchemy_error(exc, connection.dialect, plan.sql, arguments, dropped) from exc



def as_sqlalchemy_error(exc: Exception, dialect: Dialect, sql: str | None, arguments, dropped: bool) -> DBAPIError:
    """A driver error as SQLAlchemy raises it (OperationalError, IntegrityError, …)."""
    return DBAPIError.instance(sql, arguments, exc, dialect.loaded_dbapi.Error, connection_invalidated=dropped,
                               dialect=dialect)


class CounterUpsert(PreparedStatement):
    """Add to the counters of the row with this `key` (its primary key columns), creating
    it when missing: one statement, so concurrent transactions never race to create the
    row. The upsert is written in each database's own syntax, which SQLAlchemy 2.0 does
    not cache: compiled on every execution, it cost more than the rest of a stock
    movement's SQL.

    `lowest` and `highest` columns keep the least and the greatest value ever given.
    NULL stands for "unknown" and stays so: LEAST/GREATEST (SQLite's min/max) of a NULL
    is NULL on both databases, so a bound missing from older rows is never narrowed into
    a wrong one by later values."""

    def __init__(self, table: Table, key: tuple[str, ...], counters: tuple[str, ...],
                 lowest: tuple[str, ...] = (), highest: tuple[str, ...] = ()):
        super().__init__()
        self.table, self.key, self.counters, self.lowest, self.highest = table, key, counters, lowest, highest

    def build(self, dialect: Dialect) -> Executable:
        table, counters = self.table, self.counters
        values = {name: bindparam(name) for name in (*self.key, *counters, *self.lowest, *self.highest)}
        if dialect.name == "mysql":
            inserting = mysql.insert(table).values(values)
            given, least, greatest = inserting.inserted, func.least, func.greatest
        else:
            inserting = sqlite.insert(table).values(values)
            given, least, greatest = inserting.excluded, func.min, func.max
        changes = {name: table.c[name] + given[name] for name in counters}
        changes.update({name: least(table.c[name], given[name]) for name in self.lowest})
        changes.update({name: greatest(table.c[name], given[name]) for name in self.highest})
        if dialect.name == "mysql":
            return inserting.on_duplicate_key_update(changes)
        return inserting.on_conflict_do_update(index_elements=[table.c[name] for name in self.key], set_=changes)
