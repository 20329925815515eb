"""Is this instance able to serve: database reachable, schema at the newest migration,
and (SQLite) writes able to commit."""
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db import MIGRATIONS_DIR, db
from db.galera import NODE_NOT_READY, error_code, is_cluster_node
from db.sqlite import database_directory, room_for_writes
from services.transaction import run_in_write_transaction, safe_rollback


def database_reachable() -> bool:
    """One round trip; any failure (down, timeout, auth) means not reachable."""
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - every failure means the same thing here
        safe_rollback()
        return False


# wsrep_local_state 4 is "Synced"; joining, donor and joined nodes are not ready.
SYNCED = "4"
CLUSTER_STATUS = text("SHOW GLOBAL STATUS WHERE Variable_name IN"
                      " ('wsrep_ready', 'wsrep_local_state', 'wsrep_local_state_comment', 'wsrep_cluster_status')")


def cluster_state() -> dict | None:
    """On a Galera node (wsrep_on), whether it may serve: ready, synced and in the primary
    component. None on SQLite and on a server that is no cluster node. SHOW statements
    answer even where queries fail with 1047, so the reason can be told."""
    if db.session.get_bind().dialect.name != "mysql" or not is_cluster_node(db.session.connection()):
        return None
    status = {name.removeprefix("wsrep_"): value for name, value in db.session.execute(CLUSTER_STATUS)}
    status["synced"] = (status.get("ready") == "ON" and status.get("local_state") == SYNCED
                        and status.get("cluster_status") == "Primary")
    return status


def node_not_ready(exc: OperationalError) -> bool:
    """The server refused because it is a Galera node not ready to serve (1047)."""
    return error_code(exc) == NODE_NOT_READY


def migration_state() -> dict:
    """The database's Alembic revision against the newest one this code ships."""
    heads = set(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())
    if current_app.config["SCHEMA_SETUP"] == "create_all":
        return {"current": None, "head": sorted(heads), "up_to_date": True, "managed": False}
    current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    return {"current": sorted(current), "head": sorted(heads), "up_to_date": current == heads, "managed": True}


def database_writable() -> bool:
    """SQLite only (a server database reports its own trouble): room on the volume for a
    WAL's worth of writes, and a write commits. The probe rewrites the file header's
    user_version, which the schema does not use, with the value it has: one page through
    the WAL, nothing changed."""
    directory = database_directory()
    if directory is None:
        return True
    if not room_for_writes(directory):
        return False

    def probe() -> None:
        version = int(db.session.execute(text("PRAGMA user_version")).scalar_one())
        db.session.execute(text(f"PRAGMA user_version = {version}"))

    try:
        run_in_write_transaction(probe)
    except OperationalError:  # the volume is full, the file read-only, …
        return False
    return True
