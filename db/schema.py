"""Schema creation at start-up, serialised across processes, and planner statistics."""
import fcntl
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import Connection, Engine, insert, select, text

from db import MIGRATIONS_DIR, db
from db.galera import cluster_lease, is_cluster_node


@contextmanager
def _schema_lock(engine: Engine):
    """Serialise schema creation across processes starting at the same moment: on a
    Galera cluster across nodes too, where GET_LOCK holds on one node only."""
    if engine.dialect.name == "mysql":
        with engine.connect() as connection:
            on_a_cluster = is_cluster_node(connection)
        if on_a_cluster:
            with cluster_lease(engine):
                yield
            return
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


def ensure_default_warehouse(connection: Connection) -> None:
    """Create the default warehouse when no live one is marked: on a fresh database
    built from the models (the migrations create it on theirs)."""
    from models import DEFAULT_WAREHOUSE, Warehouse
    from models.types import utcnow

    marked = connection.scalar(select(Warehouse.id).where(Warehouse.is_default.is_(True), Warehouse.deleted_at.is_(None)))
    if marked is None:
        now = utcnow()
        connection.execute(insert(Warehouse).values(**DEFAULT_WAREHOUSE, is_default=True, created_at=now, updated_at=now))


def create_schema(app: Flask) -> None:
    """Bring the schema up to date at start-up, under a lock, so several gunicorn
    workers starting at once on a fresh database never race. Migrations by default;
    `SCHEMA_SETUP=create_all` (the test suite) builds the tables straight from the models."""
    with app.app_context():
        with _schema_lock(db.engine):
            if app.config["SCHEMA_SETUP"] == "create_all":
                db.create_all()
                with db.engine.begin() as connection:
                    ensure_default_warehouse(connection)
            else:
                upgrade(directory=str(MIGRATIONS_DIR))
            if db.engine.dialect.name == "sqlite":
                with db.engine.begin() as connection:
                    connection.execute(text("PRAGMA optimize"))  # refreshes stale planner statistics, cheaply
