"""SQLite on a volume that fills up: writes answer 503 while it is full, readiness says
so, and writes work again as soon as space is freed, without a restart and after one.

The volume is a real filesystem of a few MiB (a tmpfs the test mounts, which needs root
with CAP_SYS_ADMIN: in CI it must run, elsewhere it is skipped when it cannot mount)."""
import os
import subprocess
from pathlib import Path

import pytest

from db import db
from main import create_app
from tests.conftest import SHARED_DATABASE_URL
from tests.helpers import assert_error, ok

pytestmark = pytest.mark.skipif(bool(SHARED_DATABASE_URL), reason="runs in the SQLite pass")
VOLUME_MIB = 4
KEEP_FREE = 1536 * 1024  # what the filler file leaves for the database to fill
DESCRIPTION = "很长的描述" * 390  # ~6 KB per product


@pytest.fixture
def small_volume(tmp_path):
    volume = tmp_path / "volume"
    volume.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME_MIB}m,mode=0700", "tmpfs", str(volume)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a {VOLUME_MIB} MiB tmpfs (needs root with CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield volume
    finally:
        subprocess.run(["umount", "--lazy", str(volume)], check=True)


def _start(path: Path):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SCHEMA_SETUP": "migrate"})
    return app, app.test_client()


def _stop(app) -> None:
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _fill_all_but(volume: Path, keep: int) -> Path:
    filler = volume / "filler"
    stats = os.statvfs(volume)
    filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - keep))
    return filler


def _create(client, number: int):
    return client.post("/api/products/", json={"name": f"商品{number}", "sku": f"FULL-{number}", "price": 1,
                                               "description": DESCRIPTION})


def test_writes_recover_once_space_is_freed_and_readiness_tells_when_they_cannot(small_volume):
    app, client = _start(small_volume / "inventory.db")
    try:
        assert ok(client.get("/health/ready"))["status"] == "ready"
        product = ok(_create(client, 0), 201)
        filler = _fill_all_but(small_volume, KEEP_FREE)
        created = 1
        while (response := _create(client, created)).status_code == 201:  # until the volume is full
            created += 1
            assert created < 1000, "the volume never filled up"
        assert_error(response, 503, "SERVICE_UNAVAILABLE")
        assert created > 10
        details = assert_error(client.get("/health/ready"), 503, "SERVICE_UNAVAILABLE")
        assert details["database"] == "not writable"
        assert client.get("/health/live").status_code == 200
        assert ok(client.get(f"/api/products/{product['id']}"))["id"] == product["id"]  # reads still work

        filler.unlink()
        # Far more WAL traffic than the space freed: only a WAL kept small fits.
        for _ in range(600):
            ok(client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1}))
        assert ok(client.get("/health/ready"))["status"] == "ready"
        assert ok(client.get(f"/api/stock/product/{product['id']}"))["quantity"] == 600
        wal = small_volume / "inventory.db-wal"
        assert wal.stat().st_size <= VOLUME_MIB * 1024 * 1024 // 8
    finally:
        _stop(app)

    app, client = _start(small_volume / "inventory.db")  # and after a restart
    try:
        assert ok(client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1}))
        assert ok(client.get("/health/ready"))["status"] == "ready"
        assert ok(_create(client, created), 201)
    finally:
        _stop(app)
