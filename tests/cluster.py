"""What the Galera cluster tests share: the cluster the harness started
(deploy/galera/cluster.sh, named by TEST_GALERA_URLS), a fresh database on it per test,
app instances on its nodes, HAProxy with the project's config, and clients that retry
a 503 with the same Idempotency-Key as docs/cluster.md tells clients to."""
import hashlib
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PROJECT_DIR, LiveServer, _free_port, answers_200

GALERA_URLS = [url for url in os.environ.get("TEST_GALERA_URLS", "").split(",") if url]
HARNESS = PROJECT_DIR / "deploy" / "galera" / "cluster.sh"
GALERA_DIR = Path(os.environ.get("GALERA_DIR", "/tmp/galera"))  # the harness's data directories
HAPROXY_CONFIG = PROJECT_DIR / "deploy" / "haproxy" / "inventory-galera.cfg"
TIMEOUT = (5, 45)
# Never skipped in CI: .ci/run starts the cluster and names it.
needs_cluster = pytest.mark.skipif(
    not GALERA_URLS and os.environ.get("CI") != "true",
    reason="no Galera cluster: start one with deploy/galera/cluster.sh start and set TEST_GALERA_URLS",
)


def node(action: str, number: int) -> None:
    """kill | shutdown | restart node `number` through the harness."""
    subprocess.run([str(HARNESS), action, str(number)], check=True, timeout=180)


def ensure_cluster() -> None:
    """Three nodes synced in one primary component, whatever an earlier test left behind
    (a node killed, cut off or failing to restart): the harness rejoins or rebuilds it."""
    done = subprocess.run([str(HARNESS), "ensure"], capture_output=True, text=True, timeout=240)
    if done.stderr:
        print(done.stderr)
    assert done.returncode == 0, f"the cluster could not be brought back: {done.stderr}"


def error_log(number: int) -> str:
    return (GALERA_DIR / f"node{number}" / "error.log").read_text(errors="replace")


def create_cluster_database() -> list[str]:
    """A new database on the cluster; its URL on each node."""
    name = f"inv_cluster_{uuid.uuid4().hex[:12]}"
    _admin(0, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return [make_url(url).set(database=name).render_as_string(hide_password=False) for url in GALERA_URLS]


def drop_cluster_database(urls: list[str]) -> None:
    for index in range(len(GALERA_URLS)):
        try:
            _admin(index, f"DROP DATABASE IF EXISTS `{make_url(urls[0]).database}`")
            return
        except Exception:  # noqa: BLE001 - that node is down; another one drops it
            continue


def _admin(index: int, statement: str) -> None:
    engine = create_engine(GALERA_URLS[index], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def table_checksums(url: str) -> dict[str, str]:
    """A digest of every table's rows, read after this node applied all it was sent.
    (Not CHECKSUM TABLE: on a table with a stored generated column, `stock`, MariaDB 10.11
    answers different sums for the same rows from one connection to the next.)"""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SET SESSION wsrep_sync_wait = 1"))
            tables = [row[0] for row in connection.execute(text("SHOW TABLES"))]
            return {table: hashlib.sha256(repr(sorted(map(repr, connection.execute(text(f"SELECT * FROM `{table}`")))))
                                          .encode()).hexdigest() for table in tables}
    finally:
        engine.dispose()


def assert_nodes_agree(urls: list[str], seconds: float = 20) -> None:
    """Every node ends with the same tables, row for row (the last write sets may still be
    being applied when the load stops, so they are given a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        checksums = [table_checksums(url) for url in urls]
        if all(checksum == checksums[0] for checksum in checksums):
            return
        differing = {table for checksum in checksums for table in checksum if checksum[table] != checksums[0].get(table)}
        assert time.monotonic() < deadline, f"tables differ between nodes: {sorted(differing)}"
        time.sleep(0.5)


def start_instances(urls: list[str], directory: Path, workers: int = 2, **env) -> list[LiveServer]:
    """One gunicorn per URL, all started at once (migrations run by each at start-up)."""
    servers = [LiveServer(url, workers, directory / f"gunicorn-node{i + 1}.log", extra_env=env)
               for i, url in enumerate(urls)]
    for server in servers:
        server.wait_ready(120)
    return servers


@dataclass
class Keyed:
    """One stock change sent with an Idempotency-Key, retried on 503 and lost connections."""

    action: str
    product_id: int
    quantity: int
    key: str = ""
    first_status: int | None = None
    status: int | None = None
    body: dict | None = None
    attempts: int = 0

    @property
    def code(self) -> str | None:
        return (self.body or {}).get("error", {}).get("code")


class KeyedClients:
    """Threads sending keyed changes; a 503 or a dropped connection is retried with the
    same key after Retry-After (at most `deadline` seconds in all)."""

    def __init__(self, threads: int = 16, deadline: float = 120):
        self.threads, self.deadline = threads, deadline
        self.local = threading.local()

    def _send(self, change: Keyed, url: str, stop_at: float) -> Keyed:
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        change.key = change.key or uuid.uuid4().hex
        body = {"product_id": change.product_id, "quantity": change.quantity, "reason": "集群测试"}
        while time.monotonic() < stop_at:
            change.attempts += 1
            try:
                response = session.post(f"{url}/api/stock/{change.action}", json=body, timeout=TIMEOUT,
                                        headers={"Idempotency-Key": change.key})
                status, retry_after = response.status_code, float(response.headers.get("Retry-After", 0.2))
                change.body = response.json()
            except requests.RequestException:
                status, retry_after = None, 0.5
                session = self.local.session = requests.Session()
            change.first_status = change.first_status or status or 0
            change.status = status
            if status is not None and status != 503:
                return change
            time.sleep(min(retry_after, 1.0))
        return change

    def run(self, changes: list[Keyed], urls: list[str]) -> list[Keyed]:
        stop_at = time.monotonic() + self.deadline
        with ThreadPoolExecutor(self.threads) as pool:
            return list(pool.map(lambda pair: self._send(pair[1], urls[pair[0] % len(urls)], stop_at),
                                 enumerate(changes)))


def create_product(url: str, label: str, initial: int) -> int:
    body = {"name": f"集群商品{label}", "sku": f"GAL-{label}-{uuid.uuid4().hex[:8]}", "price": 1,
            "initial_quantity": initial}
    response = requests.post(f"{url}/api/products/", json=body, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def quantity(url: str, product_id: int) -> int:
    response = requests.get(f"{url}/api/stock/product/{product_id}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["data"]["quantity"]


def verify(url: str) -> dict:
    """The whole ledger's verify report, every page of the walk followed."""
    problems, cursor = [], {}
    while True:
        response = requests.get(f"{url}/api/logs/verify", params=cursor, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        page = response.json()["data"]
        problems += page["problems"]
        if page["complete"]:
            return {"problems": problems}
        cursor = {"after": page["next_after"]} if page["next_after"] is not None else {"after_day": page["next_after_day"]}


class HAProxy:
    """HAProxy with the project's config (deploy/haproxy), its servers pointed at the instances."""

    def __init__(self, instances: list[LiveServer], directory: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = HAPROXY_CONFIG.read_text().replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{self.port}")
        for number, instance in enumerate(instances, start=1):
            config = config.replace(f"127.0.0.1:800{number}", f"127.0.0.1:{instance.port}")
        path = directory / "haproxy.cfg"
        path.write_text(config)
        self.process = subprocess.Popen(["haproxy", "-db", "-f", str(path)], stdout=open(directory / "haproxy.log", "w"),
                                        stderr=subprocess.STDOUT)
        if not answers_200(f"{self.url}/health/ready", seconds=20):
            raise RuntimeError(f"haproxy did not come up: {(directory / 'haproxy.log').read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
