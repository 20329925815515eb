"""Request logs, metrics across workers, liveness/readiness, proxy headers."""
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from db import db
from main import create_app
from tests.conftest import PROJECT_DIR, SHARED_DATABASE_URL, LiveServer


def test_each_request_logs_one_structured_line(client, caplog):
    caplog.set_level("INFO", logger="inventory.access")
    response = client.get("/api/logs/actions", headers={"X-Request-ID": "trace-42"})
    lines = [r for r in caplog.records if r.name == "inventory.access"]
    assert len(lines) == 1
    line = lines[0]
    assert (line.method, line.path, line.status, line.request_id) == ("GET", "/api/logs/actions", 200, "trace-42")
    assert line.duration_ms >= 0 and response.headers["X-Request-ID"] == "trace-42"


def test_a_generated_request_id_is_the_one_logged(client, caplog):
    caplog.set_level("INFO", logger="inventory.access")
    response = client.get("/api/logs/actions", headers={"X-Request-ID": "not a valid id!"})
    (line,) = [r for r in caplog.records if r.name == "inventory.access"]
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert line.request_id == response.headers["X-Request-ID"]


def _counter(metrics: str, endpoint: str, status: str) -> float:
    pattern = (r'inventory_http_requests_total\{endpoint="' + re.escape(endpoint)
               + r'",method="GET",status="' + status + r'"\} ([0-9.e+]+)')
    return sum(float(value) for value in re.findall(pattern, metrics))


def test_made_up_methods_are_counted_as_other(client):
    """Label values come from a fixed set, so clients cannot add metric series at will."""
    def counted() -> tuple[float, str]:
        metrics = client.get("/metrics").get_data(as_text=True)
        other = re.findall(r'inventory_http_requests_total\{endpoint="unmatched",method="OTHER",status="\d+"\} ([0-9.e+]+)',
                           metrics)
        return sum(map(float, other)), metrics

    before, _ = counted()
    client.open("/nowhere", method="BREW")
    after, metrics = counted()
    assert after == before + 1
    assert 'method="BREW"' not in metrics


def test_metrics_are_prometheus_text_with_one_charset(client):
    assert client.get("/metrics").headers["Content-Type"] == "text/plain; version=1.0.0; charset=utf-8"


def test_a_flask_command_logs_to_stderr_and_keeps_stdout_for_its_output(tmp_path):
    """`flask --app main ledger verify | jq` works: start-up log lines (the schema
    migrations, the access-control notice) do not land in the report."""
    database = f"sqlite:///{tmp_path / 'cli.db'}"  # migrated by the command itself
    env = {**os.environ, "APP_ENV": "development", "DATABASE_URL": database, "LOG_LEVEL": "INFO"}
    run = subprocess.run([sys.executable, "-m", "flask", "--app", "main", "ledger", "verify"], cwd=PROJECT_DIR,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["problems_total"] == 0
    assert '"level": "WARNING"' in run.stderr  # access control is off in development, and it says so


@pytest.fixture
def recycling_server(db_url, tmp_path):
    """Two workers, each replaced after 10 requests: many processes serve one run."""
    recycle = {"GUNICORN_MAX_REQUESTS": "10", "GUNICORN_MAX_REQUESTS_JITTER": "0"}
    server = LiveServer(db_url, 2, tmp_path / "gunicorn.log", extra_env=recycle)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_metrics_add_up_across_gunicorn_workers(recycling_server):
    url = recycling_server.url
    with ThreadPoolExecutor(4) as pool:
        statuses = set(pool.map(lambda _: requests.get(f"{url}/api/logs/actions", timeout=20).status_code, range(40)))
    assert statuses == {200}
    metrics_dir = recycling_server.log_path.parent / f"metrics-{recycling_server.port}"
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 3, "several worker processes should have served"
    metrics = requests.get(f"{url}/metrics", timeout=20).text
    assert _counter(metrics, "/api/logs/actions", "200") == 40
    assert "inventory_http_request_duration_seconds_bucket" in metrics


def _own_metrics_dir(root: Path, master: subprocess.Popen) -> Path:
    """The metrics directory a master made itself under `root` (its name carries the
    master's pid): only that one, whatever other processes leave next to it."""
    (made,) = root.glob(f"inventory-metrics-{master.pid}-*")
    return made


def _temporary_metrics(tmp_path: Path, **settings) -> tuple[Path, dict]:
    temporary = tmp_path / "tmp"
    temporary.mkdir(exist_ok=True)
    return temporary, {"PROMETHEUS_MULTIPROC_DIR": "", "TMPDIR": str(temporary), **settings}


def test_a_metrics_directory_gunicorn_made_itself_is_removed_when_it_stops(db_url, tmp_path):
    temporary, settings = _temporary_metrics(tmp_path)
    server = LiveServer(db_url, 2, tmp_path / "gunicorn.log", extra_env=settings)
    try:
        server.wait_ready()
        requests.get(f"{server.url}/api/logs/actions", timeout=20)
        made = _own_metrics_dir(temporary, server.process)
        assert list(made.glob("*.db"))  # the workers' metric files
    finally:
        server.stop()
    assert server.process.returncode == 0  # stopped by SIGTERM, not killed
    assert not made.exists()


def _workers_of(master: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == master:
            found.append(int(stat.parent.name))
    return found


def _wait_gone(pids: list[int], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.1)


def test_a_metrics_directory_left_by_a_killed_master_is_removed_at_the_next_start(db_url, tmp_path):
    """SIGKILL skips every exit handler: the next gunicorn to start removes what the
    killed one left, and leaves alone the directory of one that still runs."""
    temporary, settings = _temporary_metrics(tmp_path)
    running = LiveServer(db_url, 1, tmp_path / "running.log", extra_env=settings)
    # A short timeout: its orphaned workers notice their master is gone within 2 s (and
    # database waits short enough for the app to accept it).
    short = {"GUNICORN_TIMEOUT": "4", "SQLITE_BUSY_TIMEOUT": "1", "DB_READ_TIMEOUT": "1", "DB_CONNECT_TIMEOUT": "1",
             "DB_RETRY_BUDGET": "0.5"}
    killed = LiveServer(db_url, 2, tmp_path / "killed.log", extra_env={**settings, **short})
    following = None
    try:
        running.wait_ready()
        killed.wait_ready()
        requests.get(f"{killed.url}/api/logs/actions", timeout=20)
        left = _own_metrics_dir(temporary, killed.process)
        workers = _workers_of(killed.process.pid)
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait(timeout=20)
        _wait_gone(workers)
        assert left.exists() and list(left.glob("*.db"))

        following = LiveServer(db_url, 1, tmp_path / "following.log", extra_env=settings)
        following.wait_ready()
        assert not left.exists()
        assert _own_metrics_dir(temporary, running.process).exists()
        assert _own_metrics_dir(temporary, following.process).exists()
    finally:
        for server in (running, killed, following):
            if server:
                server.stop()
    assert list(temporary.iterdir()) == []


def test_a_metrics_directory_gunicorn_made_itself_is_removed_when_the_app_fails_to_load(db_url, tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = LiveServer(db_url, 2, tmp_path / "gunicorn.log",
                        extra_env={"PROMETHEUS_MULTIPROC_DIR": "", "TMPDIR": str(temporary), "LOG_LEVEL": "LOUD"})
    assert server.process.wait(timeout=60) != 0
    assert "Unknown level" in server.log_path.read_text()
    assert list(temporary.iterdir()) == []


def test_liveness_answers_without_the_database(client):
    assert client.get("/health/live").get_json()["data"] == {"status": "alive"}


@pytest.mark.skipif(bool(SHARED_DATABASE_URL), reason="needs a database of its own")
def test_readiness_requires_current_migrations(tmp_path):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'r.db'}", "SCHEMA_SETUP": "migrate"})
    client = app.test_client()
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.get_json()["data"]["migrations"]["up_to_date"] is True
    with app.app_context():
        db.session.execute(text("DELETE FROM alembic_version"))
        db.session.commit()
    stale = client.get("/health/ready")
    assert stale.status_code == 503
    assert stale.get_json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert client.get("/health/live").status_code == 200


def test_forwarded_client_address_is_honoured_only_behind_a_configured_proxy(db_url, caplog):
    caplog.set_level("INFO", logger="inventory.access")
    for hops, expected in ((0, "127.0.0.1"), (1, "203.0.113.9")):
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "PROXY_HOPS": hops})
        caplog.clear()
        app.test_client().get("/health/live", headers={"X-Forwarded-For": "203.0.113.9"})
        assert [r.remote_addr for r in caplog.records if r.name == "inventory.access"] == [expected]
        with app.app_context():
            db.engine.dispose()


def test_the_log_level_is_read_in_any_case(db_url):
    """LOG_LEVEL sets gunicorn's level too, which is spelled in lower case there."""
    create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "info"})
    assert logging.getLogger().level == logging.INFO
    create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "LOG_LEVEL": "Warning"})
    assert logging.getLogger().level == logging.WARNING
