"""Is this instance able to serve: database reachable, schema at the newest migration."""
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import text

from db import MIGRATIONS_DIR, db


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
