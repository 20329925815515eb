"""Fixtures: a fresh app per test on SQLite (or `TEST_DATABASE_URL`), and a real gunicorn."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

os.environ["APP_ENV"] = "testing"

from db import db  # noqa: E402
from db.schema import ensure_default_warehouse  # noqa: E402
from main import create_app  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
# Production refuses its public default secret; the live servers get their own.
LIVE_SECRET_KEY = uuid.uuid4().hex


def database_url(tmp_path: Path) -> str:
    """The shared test server database when given, else a fresh SQLite file."""
    return SHARED_DATABASE_URL or f"sqlite:///{tmp_path / 'inventory.db'}"


def empty_tables(app) -> None:
    with app.app_context():
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):  # children before their parents
                connection.execute(table.delete())
            ensure_default_warehouse(connection)  # as on a fresh database


@pytest.fixture
def db_url(tmp_path):
    return database_url(tmp_path)


@pytest.fixture
def app(db_url):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url})
    if SHARED_DATABASE_URL:
        empty_tables(app)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def create_product(client):
    """Create a product through the API; returns its `data`."""
    counter = iter(range(1, 1_000_000))

    def create(**fields):
        body = {"name": "测试商品", "sku": f"SKU-{next(counter)}", "price": 19.99, **fields}
        response = client.post("/api/products/", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()["data"]

    return create


@pytest.fixture
def retries(monkeypatch) -> list[str]:
    """Every retryable error the write path sees from now on: on MariaDB a deadlock is
    rolled back and retried silently, so a test that must never deadlock requires none."""
    from services import transaction

    seen, retried = transaction._is_retryable, []

    def counting(exc):
        retried.append(str(exc.orig))
        return seen(exc)

    monkeypatch.setattr(transaction, "_is_retryable", counting)
    return retried


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers_200(url: str, seconds: float) -> bool:
    """Whether `url` answers 200 within `seconds` (asked every 0.2 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return True
        except requests.RequestException:  # not listening yet
            pass
        time.sleep(0.2)
    return False


class LiveServer:
    """gunicorn running `main:app` with the project's config, on a free loopback port."""

    def __init__(self, url: str, workers: int, log_path: Path, extra_env: dict | None = None):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {**os.environ, "APP_ENV": "production", "DATABASE_URL": url, "GUNICORN_ACCESSLOG": "",
               # A fresh file is migrated as in production; the shared server database
               # already holds the suite's tables, built from the models.
               "SCHEMA_SETUP": "create_all" if url == SHARED_DATABASE_URL else "migrate",
               "PROMETHEUS_MULTIPROC_DIR": str(log_path.parent / f"metrics-{self.port}"),
               # Production enforces keys and limits; the suite's servers opt out, and the
               # access-control tests opt back in through extra_env.
               "SECRET_KEY": LIVE_SECRET_KEY, "AUTH_REQUIRED": "false", "RATELIMIT_ENABLED": "false",
               **(extra_env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
             "-b", f"127.0.0.1:{self.port}", "-w", str(workers), "main:app"],
            cwd=PROJECT_DIR, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
        )

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()}")
            try:
                if requests.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or still booting
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not become ready: {self.log_path.read_text()}")

    def stop(self) -> None:
        """SIGTERM; SIGKILL only once gunicorn's own graceful stop (30 s) had its time,
        since a killed master leaves its files behind."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def live_server(tmp_path, db_url, request):
    """A started gunicorn with 4 workers on a fresh database (override: `workers` marker)."""
    marker = request.node.get_closest_marker("workers")
    workers = marker.args[0] if marker else 4
    if SHARED_DATABASE_URL:
        empty_tables(create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url}))
    server = LiveServer(db_url, workers, tmp_path / "gunicorn.log")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def empty_database_url(tmp_path):
    """A database nobody has created tables in: a new SQLite file, or on MariaDB a
    brand-new `inv_fresh_*` database created here and dropped afterwards."""
    if not SHARED_DATABASE_URL:
        path = tmp_path / "fresh" / "inventory.db"
        path.parent.mkdir()
        yield f"sqlite:///{path}"
        return
    shared = make_url(SHARED_DATABASE_URL)
    name = f"inv_fresh_{uuid.uuid4().hex[:12]}"
    server = create_engine(shared.set(database=None), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        try:
            yield shared.set(database=name).render_as_string(hide_password=False)
        finally:
            with server.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        server.dispose()


# Tests through Nginx are skipped without it, except in CI, where they must run.
NGINX_MISSING = shutil.which("nginx") is None and os.environ.get("CI") != "true"


class NginxProxy:
    """Nginx on a loopback port with the project's own site file (deploy/nginx), its
    upstream pointed at the given app servers; access.log lists the upstream of each request."""

    SITE = PROJECT_DIR / "deploy" / "nginx" / "inventory.conf"

    def __init__(self, upstreams: list[LiveServer], directory: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = self.SITE.read_text().replace("listen 80;", f"listen 127.0.0.1:{self.port};")
        for default, server in zip(("127.0.0.1:8001", "127.0.0.1:8002"), upstreams, strict=True):
            site = site.replace(default, f"127.0.0.1:{server.port}")
        (directory / "site.conf").write_text(site)
        kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        temp = "\n".join(f"    {kind}_temp_path {directory}/{kind};" for kind in kinds)
        (directory / "nginx.conf").write_text(
            f"worker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\ndaemon off;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n    log_format upstreams '$upstream_addr $status';\n"
            f"    access_log {directory}/access.log upstreams;\n{temp}\n    include {directory}/site.conf;\n}}\n"
        )
        self.process = subprocess.Popen(
            ["nginx", "-p", str(directory), "-c", str(directory / "nginx.conf")],
            stdout=open(directory / "nginx.out", "w"), stderr=subprocess.STDOUT,
        )
        if answers_200(f"{self.url}/health", seconds=20):
            return
        raise RuntimeError(f"nginx did not come up: {(directory / 'error.log').read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
