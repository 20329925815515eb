"""The warehouses migration on a database filled by the `seed` command of the version
before it: all stock moves into the DEFAULT warehouse, every ledger row keeps its hash
and `ledger verify` is clean after the upgrade (SQLite, or MariaDB with TEST_DATABASE_URL)."""
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import text

from db import db
from main import create_app
from tests.helpers import ok

PROJECT_DIR = Path(__file__).resolve().parent.parent
MIGRATION = "migrations/versions/221e27110bf0_warehouses_and_stock_levels.py"


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(PROJECT_DIR), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def _version_before_warehouses(into: Path) -> Path:
    """The project as it was just before the commit that added the migration (or as
    committed, while that commit is still being written)."""
    if shutil.which("git") is None or not (PROJECT_DIR / ".git").exists():
        pytest.skip("needs the project's git history")
    added = _git("log", "--diff-filter=A", "--format=%H", "--", MIGRATION).splitlines()
    revision = f"{added[-1]}^" if added else "HEAD"
    archive = subprocess.run(["git", "-C", str(PROJECT_DIR), "archive", revision], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_a_seeded_database_upgrades_into_the_default_warehouse(empty_database_url, tmp_path):
    old = _version_before_warehouses(tmp_path / "before")
    assert not (old / MIGRATION).exists()
    env = {**os.environ, "DATABASE_URL": empty_database_url, "APP_ENV": "development", "SCHEMA_SETUP": "migrate"}
    seeded = subprocess.run([sys.executable, "-m", "flask", "--app", "main", "seed", "--products", "40",
                             "--movements", "600", "--random-seed", "5"], cwd=old, env=env, capture_output=True,
                            text=True)
    assert seeded.returncode == 0, seeded.stderr[-3000:]

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    with app.app_context():
        hashes = dict(db.session.execute(text("SELECT id, hash FROM stock_logs")).all())
        totals = dict(db.session.execute(text("SELECT product_id, quantity FROM stock")).all())
        db.session.remove()
    upgraded = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    client = app.test_client()
    with app.app_context():
        assert dict(db.session.execute(text("SELECT id, hash FROM stock_logs")).all()) == hashes
        levels = db.session.execute(text(
            "SELECT l.product_id, l.quantity, w.code FROM stock_levels l JOIN warehouses w ON w.id = l.warehouse_id")).all()
        marked = db.session.execute(text(
            "SELECT COUNT(*) FROM stock_logs WHERE warehouse_code = 'DEFAULT' AND hash_version = 1"
            " AND level_before = before_quantity AND level_after = after_quantity")).scalar()
        db.session.remove()
    assert {pid: quantity for pid, quantity, _ in levels} == totals
    assert {code for _, _, code in levels} == {"DEFAULT"}
    assert marked == len(hashes) == 600
    assert ok(client.get("/api/logs/verify"))["problems"] == []
    verified = app.test_cli_runner().invoke(args=["ledger", "verify"])
    assert verified.exit_code == 0, verified.output

    # The upgraded database takes the new writes: a second warehouse and a transfer into it.
    product = next(pid for pid, quantity in totals.items() if quantity > 0)
    other = ok(client.post("/api/warehouses/", json={"code": "NEW", "name": "新仓"}), 201)["id"]
    default = next(w["id"] for w in ok(client.get("/api/warehouses/"))["items"] if w["is_default"])
    ok(client.post("/api/stock/transfer", json={"product_id": product, "from_warehouse_id": default,
                                                "to_warehouse_id": other, "quantity": 1}))
    assert ok(client.get("/api/logs/verify"))["problems"] == []
    with app.app_context():
        db.engine.dispose()
