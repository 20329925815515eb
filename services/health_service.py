"""Is this instance able to serve: database reachable, schema at the newest migration,
and (SQLite) writes able to commit."""
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db import MIGRATIONS_DIR, db
from db.sqlite import database_directory, room_for_writes
from services.transaction import run_in_write_transaction


def database_reachable() -> bool:
    """One round trip; any failure (down, timeout, auth) means not reachable."""
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - every failure means the same thing here
        db.session.rollback()
        return False


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
