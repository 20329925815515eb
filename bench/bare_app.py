"""What every throughput goal is read against, served by the same gunicorn config as
the service (`python -m bench` starts it beside the service):

- `/ping`, the ceiling: the smallest Flask JSON endpoint.
- `/floor/stock/…`, the floors: the least a stock read and a durable stock write can do
  on the service's own database, driver and durability (`FLOOR_DATABASE_URL`, tables
  made by `prepare_floor`): one SELECT by primary key; one conditional UPDATE and one
  INSERT committed together. No hooks, validation, ledger chain or ORM. A ratio that a
  floor does not reach is out of reach of any service on this stack and machine that
  does at least this much, within the noise of the measurement.
"""
import os
import time
from contextlib import nullcontext
from pathlib import Path

from flask import Flask, abort, jsonify, request
from sqlalchemy import BigInteger, Column, Float, Index, Integer, MetaData, String, Table, create_engine, event, insert

from config import Config
from db.reads import ReadConnections
from db.sqlite import SQLiteWriteQueue

app = Flask(__name__)
# The service's settings, so that gunicorn.conf.py checks the database timeouts the floors run under as the service's;
# but no secret key: with one, Flask opens its signed cookie session on every request (60 → 150 µs a /ping), which
# the service does only for the console, and the ceiling would be the slower for it.
app.config.from_object(Config)
app.config["SECRET_KEY"] = None

FLOOR_METADATA = MetaData()
FLOOR_STOCK = Table("floor_stock", FLOOR_METADATA, Column("product_id", Integer, primary_key=True, autoincrement=False),
                    Column("quantity", BigInteger, nullable=False))
FLOOR_LOG = Table(
    "floor_log", FLOOR_METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("product_id", Integer, nullable=False), Column("quantity", Integer, nullable=False),
    Column("reason", String(255)), Column("operator", String(100)), Column("created_at", Float, nullable=False),
    Index("ix_floor_log_product_id_id", "product_id", "id"),
)
INITIAL_QUANTITY = 1_000_000


@app.get("/ping")
def ping():
    return jsonify({"success": True, "message": "成功", "data": {"pong": True}})


def prepare_floor(url: str, products: int) -> None:
    """The floors' tables in an empty database, with a stock row for ids 1..`products`.
    A SQLite file is put in WAL mode here, as the service's master does at start: its
    workers, opening their connections all at once, then find it so."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode = WAL")
    FLOOR_METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(FLOOR_STOCK), [{"product_id": product_id, "quantity": INITIAL_QUANTITY}
                                                 for product_id in range(1, products + 1)])
    engine.dispose()


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {Config.SQLITE_BUSY_TIMEOUT * 1000}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute(f"PRAGMA synchronous = {Config.SQLITE_SYNCHRONOUS}")
    cursor.close()


class _FloorDatabase:
    """Connections kept as the service keeps its read connections (one per worker
    thread), set up as the service's. SQLite: WAL with the service's synchronous
    setting, writes begun with BEGIN IMMEDIATE after a turn on an flock queue as the
    service's. MySQL/MariaDB: reads in autocommit mode, writes in the driver's own
    transaction at READ COMMITTED, InnoDB's durable commit."""

    def __init__(self, url: str):
        reads = create_engine(url, isolation_level="AUTOCOMMIT")
        self.sqlite = reads.dialect.name == "sqlite"
        if self.sqlite:
            event.listen(reads, "connect", _configure_sqlite)
        self.reads = ReadConnections(reads)
        self.writes = self.reads if self.sqlite else ReadConnections(create_engine(url, isolation_level="READ COMMITTED"))
        self.mark = "?" if self.sqlite else "%s"
        self.queue = (SQLiteWriteQueue(Path(reads.url.database).with_suffix(".write-lock"), Config.SQLITE_BUSY_TIMEOUT)
                      if self.sqlite else None)


_floor: list[_FloorDatabase] = []  # made on first use: the ceiling alone needs no database


def _floor_database() -> _FloorDatabase:
    if not _floor:
        _floor.append(_FloorDatabase(os.environ["FLOOR_DATABASE_URL"]))
    return _floor[0]


@app.get("/floor/stock/<int:product_id>")
def floor_read(product_id: int):
    floor = _floor_database()
    cursor = floor.reads.connection().cursor()
    cursor.execute(f"SELECT product_id, quantity FROM floor_stock WHERE product_id = {floor.mark}", (product_id,))
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        abort(404)
    return jsonify({"success": True, "message": "成功", "data": {"product_id": row[0], "quantity": row[1]}})


@app.post("/floor/stock/<any(add, reduce):action>")
def floor_write(action: str):
    body = request.get_json()
    delta = body["quantity"] if action == "add" else -body["quantity"]
    floor = _floor_database()
    mark = floor.mark
    connection = floor.writes.connection()
    cursor = connection.cursor()
    with floor.queue.turn() if floor.queue else nullcontext():
        if floor.sqlite:
            cursor.execute("BEGIN IMMEDIATE")
        try:
            cursor.execute(f"UPDATE floor_stock SET quantity = quantity + {mark} "
                           f"WHERE product_id = {mark} AND quantity + {mark} >= 0", (delta, body["product_id"], delta))
            if cursor.rowcount != 1:
                abort(409)
            cursor.execute(f"INSERT INTO floor_log (product_id, quantity, reason, operator, created_at) "
                           f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
                           (body["product_id"], delta, body.get("reason"), body.get("operator"), time.time()))
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()
    return jsonify({"success": True, "message": "成功", "data": {"product_id": body["product_id"], "moved": delta}})
