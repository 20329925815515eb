"""The database goes away mid-traffic: requests get 503 quickly, no change is half
written, and the service recovers by itself when the database returns.

Runs against a private MariaDB server (its own data directory and port) that the
test kills and restarts, so the machine's database is never disturbed.
"""
import importlib.util
import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import SHARED_DATABASE_URL, LiveServer, _free_port

pytestmark = pytest.mark.skipif(
    not (SHARED_DATABASE_URL or "").startswith("mysql") or shutil.which("mariadbd") is None,
    reason="runs in the MariaDB pass, with mariadbd installed",
)
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
# Both MySQL drivers the service runs on, each where installed: PyMySQL always,
# mysqlclient (requirements-mysql.txt) when built. Their errors on a dead server differ.
DRIVERS = ["pymysql"] + (["mysqldb"] if importlib.util.find_spec("MySQLdb") else [])
UNKNOWN_THREAD = 1094  # KILL of a connection that has closed already


class PrivateMariaDB:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = _free_port()
        self.process = None
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={directory / 'data'}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=120,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.directory / 'data'}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.directory / 'mysqld.sock'}", "--user=root",
             "--skip-log-bin", "--innodb-buffer-pool-size=64M"],
            stdout=open(self.directory / "server.log", "a"), stderr=subprocess.STDOUT,
        )
        for _ in range(150):
            ping = subprocess.run(["mariadb-admin", "--host=127.0.0.1", f"--port={self.port}", "--user=root",
                                   "--silent", "ping"], capture_output=True)
            if ping.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError((self.directory / "server.log").read_text()[-3000:])

    def crash(self) -> None:
        """SIGKILL: no clean shutdown, as when a database host dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def sql(self, statement: str) -> None:
        subprocess.run(["mariadb", "--host=127.0.0.1", f"--port={self.port}", "--user=root", "-e", statement],
                       check=True, timeout=30)


def unexpected_tracebacks(log: str) -> list[str]:
    """Log lines with a traceback, except the pool's own report of a connection it had
    to discard because the server was gone (SQLAlchemy logs that at ERROR, with the
    driver's error, and replaces the connection): an error the app did not handle."""
    found = []
    for line in log.splitlines():
        if "Traceback" not in line:
            continue
        try:
            logger = json.loads(line).get("logger", "")
        except ValueError:
            logger = ""
        if not logger.startswith("sqlalchemy.pool"):
            found.append(line)
    return found


@pytest.fixture
def private_database(tmp_path):
    server = PrivateMariaDB(tmp_path / "mariadb")
    server.start()
    server.sql("CREATE DATABASE inventory CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    yield server
    if server.process and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(timeout=60)


@pytest.mark.parametrize("driver", DRIVERS)
def test_outage_answers_503_fast_loses_nothing_and_recovers(private_database, tmp_path, driver):
    url = f"mysql+{driver}://root@127.0.0.1:{private_database.port}/inventory?charset=utf8mb4"
    app = LiveServer(url, 2, tmp_path / "gunicorn.log", extra_env={"SCHEMA_SETUP": "migrate"})
    try:
        app.wait_ready()
        start = 5000
        product = requests.post(f"{app.url}/api/products/", timeout=30,
                                json={"name": "断库测试", "sku": "OUTAGE-1", "price": 1, "initial_quantity": start}).json()
        product_id = product["data"]["id"]
        outcomes: list[tuple[int, float, str]] = []  # reductions: status, seconds, error code
        reads: list[tuple[int, float, str]] = []  # reads on the prepared-read pool, the same
        read_paths = [f"/api/products/{product_id}", f"/api/stock/product/{product_id}", f"/api/logs/product/{product_id}"]
        stop = threading.Event()

        def timed(into: list, send) -> None:
            began = time.monotonic()
            try:
                response = send()
                code = response.json().get("error", {}).get("code", "") if response.status_code != 200 else ""
                into.append((response.status_code, time.monotonic() - began, code))
            except requests.RequestException as exc:
                into.append((0, time.monotonic() - began, type(exc).__name__))

        def traffic() -> None:
            session = requests.Session()
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline:
                timed(outcomes, lambda: session.post(f"{app.url}/api/stock/reduce",
                                                     json={"product_id": product_id, "quantity": 1}, timeout=30))
                timed(reads, lambda: session.get(f"{app.url}{read_paths[len(reads) % 3]}", timeout=30))
                time.sleep(0.01)

        threads = [threading.Thread(target=traffic) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(2)
        private_database.crash()
        time.sleep(3)
        assert requests.get(f"{app.url}/health/ready", timeout=30).status_code == 503
        assert requests.get(f"{app.url}/health/live", timeout=30).status_code == 200
        private_database.start()
        recovered_at = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and recovered_at is None:
            if requests.get(f"{app.url}/health/ready", timeout=30).status_code == 200:
                recovered_at = time.monotonic()
            time.sleep(0.2)
        assert recovered_at is not None, "the service did not recover by itself"
        time.sleep(2)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

        for seen in (outcomes, reads):
            statuses = {status for status, _, _ in seen}
            assert statuses <= {200, 503}, f"only successes and 503s: {sorted(statuses)}"
            failures = [o for o in seen if o[0] == 503]
            assert failures, "the outage was seen"
            assert {code for _, _, code in failures} == {"SERVICE_UNAVAILABLE"}
            assert max(seconds for _, seconds, _ in failures) < 10, "503s come quickly"
            assert seen[-1][0] == 200, "traffic succeeds again after recovery"

        successes = sum(status == 200 for status, _, _ in outcomes)
        final = requests.get(f"{app.url}/api/stock/product/{product_id}", timeout=30).json()["data"]["quantity"]
        applied = start - final
        # A change committed just as the server died may have lost its answer; none was lost or doubled.
        assert successes <= applied <= successes + 4
        report = requests.get(f"{app.url}/api/logs/verify?product_id={product_id}", timeout=30).json()["data"]
        assert report["problems"] == [] and report["logs_checked"] == applied + 1
        assert unexpected_tracebacks(app.log_path.read_text()) == []
    finally:
        app.stop()


def test_reads_survive_connections_the_server_dropped(app, client, create_product):
    """Reads use pooled connections without a ping first: one the server has closed
    (a restart, wait_timeout, KILL) is replaced and the read answered, not failed."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    product = create_product(name="断线重连")
    assert client.get(f"/api/products/{product['id']}").status_code == 200  # the read pool holds a connection now
    killer = create_engine(SHARED_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with killer.connect() as connection:
        database = connection.execute(text("SELECT DATABASE()")).scalar()
        own = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
        victims = connection.execute(text(
            "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> :own"), {"db": database, "own": own},
        ).scalars().all()
        for victim in victims:
            try:
                connection.execute(text(f"KILL {int(victim)}"))
            except OperationalError as error:  # closed on its own since the list was read
                if error.orig.args[0] != UNKNOWN_THREAD:
                    raise
    killer.dispose()
    assert victims
    for path in (f"/api/products/{product['id']}", f"/api/stock/product/{product['id']}",
                 f"/api/logs/product/{product['id']}"):
        response = client.get(path)
        assert response.status_code == 200, response.get_json()
