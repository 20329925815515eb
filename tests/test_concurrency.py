"""Concurrency: the stock ledger guarantees of SPEC §4 under real load.

Every test talks HTTP to a real gunicorn (several sync worker processes) from a
pool of threads, one `requests.Session` per thread, on SQLite or on the MariaDB
named by `TEST_DATABASE_URL`. After the burst the tests read the state back and
prove:

* no lost update: final count == start + successful adds - successful reductions,
  and never below zero;
* exactly the 409 INSUFFICIENT_STOCK answers the final state implies;
* nothing but 200 / 409 reaches a client (no 500, no 503, no `database is locked`);
* one log row per success, and per product an unbroken before/after chain ending
  at the current stock;
* schema creation does not race when 8 workers boot at once on an empty database.

Every request has a timeout and every burst a deadline, so a hang fails the test
instead of stalling the suite.
"""
import os
import random
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import NGINX_MISSING, LiveServer, NginxProxy

THREADS = 24
REQUEST_TIMEOUT = (5, 45)  # connect, read: above gunicorn's timeout (30 s), so the server's answer always arrives
BURST_DEADLINE = 120  # seconds for a whole burst; far above the few seconds it takes
MAX_LOG_PAGES = 50  # 5,000 log rows: far more than any test writes

# Lines that must never appear in gunicorn's log during these tests.
BAD_LOG_PATTERNS = (
    "Traceback",
    "database is locked",
    "database unavailable",  # error_handlers: an OperationalError became a 503
    "unhandled error",  # error_handlers: a 500
    "Deadlock",
    "Lock wait timeout",
    "already exists",
    "Worker failed to boot",
    "WORKER TIMEOUT",
)


# ------------------------------------------------------------- the server


# ---------------------------------------------------------------- helpers


@dataclass
class Outcome:
    """One request of a burst and what came back."""

    action: str  # add | reduce | adjust
    product: str  # key into the test's product table
    quantity: int
    extra: dict = field(default_factory=dict)  # more body fields (adjust settings)
    status: int | None = None
    body: Any = None
    error: str | None = None  # transport error / timeout / non-JSON body

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return self.body["error"].get("code")
        return None

    def describe(self) -> str:
        return f"{self.action} {self.product} q={self.quantity} -> {self.status} {self.error or self.body}"


@dataclass
class Burst:
    """Runs many stock requests concurrently, one Session per thread."""

    base_url: str
    product_ids: dict[str, int]
    local: threading.local = field(default_factory=threading.local)

    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def _send(self, outcome: Outcome, deadline: float, url: str | None = None) -> Outcome:
        if time.monotonic() > deadline:
            outcome.error = "not sent: burst deadline passed"
            return outcome
        body = {
            "product_id": self.product_ids[outcome.product],
            "quantity": outcome.quantity,
            "reason": "并发测试",
            "operator": f"t-{threading.get_ident() % 1000}",
            **outcome.extra,
        }
        try:
            response = self._session().post(
                f"{url or self.base_url}/api/stock/{outcome.action}", json=body, timeout=REQUEST_TIMEOUT
            )
        except requests.RequestException as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            return outcome
        outcome.status = response.status_code
        try:
            outcome.body = response.json()
        except ValueError:
            outcome.error = f"non-JSON body: {response.text[:300]!r}"
        return outcome

    def run(self, plan: list[Outcome], urls: list[str] | None = None) -> list[Outcome]:
        """Send every planned request from THREADS threads; `urls` spreads them over servers."""
        deadline = time.monotonic() + BURST_DEADLINE
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            futures = [
                pool.submit(self._send, outcome, deadline, urls[i % len(urls)] if urls else None)
                for i, outcome in enumerate(plan)
            ]
            _done, not_done = wait(futures, timeout=BURST_DEADLINE + REQUEST_TIMEOUT[1])
            assert not not_done, f"{len(not_done)} requests still running after the deadline"
        return [future.result() for future in futures]


def create_product(base_url: str, label: str, initial: int, **extra) -> int:
    body = {
        "name": f"并发测试商品{label}",
        "sku": f"CONC-{label}-{uuid.uuid4().hex[:10]}",
        "price": 9.99,
        "initial_quantity": initial,
        **extra,
    }
    response = requests.post(f"{base_url}/api/products/", json=body, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 201, response.text
    product = response.json()["data"]
    assert product["stock"]["quantity"] == initial
    return product["id"]


def current_quantity(base_url: str, product_id: int) -> int:
    response = requests.get(f"{base_url}/api/stock/product/{product_id}", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["data"]["quantity"]


def product_logs(base_url: str, product_id: int) -> list[dict]:
    """Every log row of the product via `/api/logs?product_id=`, oldest (lowest id) first."""
    rows: list[dict] = []
    total = None
    page = 1
    with requests.Session() as session:
        while page <= MAX_LOG_PAGES:
            response = session.get(
                f"{base_url}/api/logs/",
                params={"product_id": product_id, "per_page": 100, "page": page},
                timeout=REQUEST_TIMEOUT,
            )
            assert response.status_code == 200, response.text
            data = response.json()["data"]
            total = data["pagination"]["total"]
            rows.extend(data["items"])
            if page >= data["pagination"]["pages"]:
                break
            page += 1
    assert total is not None
    assert len(rows) == total, f"paged through {len(rows)} rows, pagination.total says {total}"
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids), "a log row appeared on two pages"
    assert all(row["product_id"] == product_id for row in rows)
    return sorted(rows, key=lambda row: row["id"])


def assert_unbroken_chain(logs: list[dict], current: int, label: str) -> None:
    """Ordered by id: starts at 0, each before == previous after, each row's own
    arithmetic holds, never negative, and the last after == the current stock."""
    previous_after = 0
    for row in logs:
        where = f"{label}: log {row['id']} ({row['action']} {row['quantity']})"
        assert row["before_quantity"] == previous_after, (
            f"{where}: before_quantity {row['before_quantity']} != previous after_quantity {previous_after}"
        )
        delta = {"in": row["quantity"], "out": -row["quantity"], "adjust": row["quantity"]}[row["action"]]
        if row["action"] in ("in", "out"):
            assert row["quantity"] > 0, where
        assert row["after_quantity"] == row["before_quantity"] + delta, f"{where}: arithmetic"
        assert row["after_quantity"] >= 0, f"{where}: below zero"
        previous_after = row["after_quantity"]
    assert previous_after == current, f"{label}: last after_quantity {previous_after} != current stock {current}"


def _log_evidence(log_paths, limit: int = 20) -> str:
    """The suspicious lines of the given gunicorn logs, for a failure message."""
    lines = [
        line
        for path in log_paths
        for line in path.read_text(errors="replace").splitlines()
        if any(pattern in line for pattern in BAD_LOG_PATTERNS + ("ERROR", "WARNING"))
    ]
    return "\ngunicorn log:\n" + "\n".join(lines[:limit]) if lines else ""


def assert_only_expected_statuses(outcomes: list[Outcome], *log_paths) -> None:
    """200 everywhere, except reductions that may get 409 INSUFFICIENT_STOCK; nothing else."""
    problems = [o for o in outcomes if o.error is not None]
    if problems:
        pytest.fail(
            f"{len(problems)} of {len(outcomes)} requests got no JSON answer, e.g.\n"
            + "\n".join(o.describe() for o in problems[:5]) + _log_evidence(log_paths),
            pytrace=False,
        )
    statuses = Counter((o.action, o.status, o.code) for o in outcomes)
    unexpected = [
        o for o in outcomes
        if not (o.status == 200 or (o.action == "reduce" and o.status == 409 and o.code == "INSUFFICIENT_STOCK"))
    ]
    if unexpected:
        pytest.fail(
            f"{len(unexpected)} of {len(outcomes)} unexpected answers; all answers (action, status, code):"
            f" {dict(statuses)}; e.g.\n" + "\n".join(o.describe() for o in unexpected[:5]) + _log_evidence(log_paths),
            pytrace=False,
        )
    for outcome in outcomes:
        assert outcome.body["success"] is outcome.ok, outcome.describe()


def assert_responses_match_ledger(outcomes: list[Outcome], logs: list[dict], label: str) -> None:
    """One log row per success, and each success answered exactly its row."""
    by_id = {row["id"]: row for row in logs}
    seen: set[int] = set()
    for outcome in outcomes:
        if not outcome.ok:
            continue
        data = outcome.body["data"]
        log = data["log"]
        if outcome.action == "adjust" and log is None:
            continue  # an adjust that changed no count writes no log (SPEC §3); counted by the caller
        assert log is not None, outcome.describe()
        assert log["id"] in by_id, f"{label}: answered log {log['id']} is not in the ledger: {outcome.describe()}"
        assert log["id"] not in seen, f"{label}: two requests answered the same log row {log['id']}"
        seen.add(log["id"])
        row = by_id[log["id"]]
        for key in ("action", "quantity", "before_quantity", "after_quantity"):
            assert log[key] == row[key], f"{label}: answer and ledger disagree on {key}: {log} vs {row}"
        expected_action = {"add": "in", "reduce": "out", "adjust": "adjust"}[outcome.action]
        assert row["action"] == expected_action, outcome.describe()
        if outcome.action == "adjust":
            assert row["after_quantity"] == outcome.quantity, outcome.describe()
        else:
            assert row["quantity"] == outcome.quantity, outcome.describe()
    unanswered = [row for row in logs if row["id"] not in seen and row["reason"] != "初始库存"]
    assert not unanswered, f"{label}: {len(unanswered)} log rows no successful request answered: {unanswered[:3]}"


def assert_clean_log(log_path) -> None:
    log = log_path.read_text(errors="replace")
    found = [pattern for pattern in BAD_LOG_PATTERNS if pattern in log]
    assert not found, f"gunicorn log contains {found}:\n" + "\n".join(
        line for line in log.splitlines() if any(pattern in line for pattern in found)
    )[:4000]


# ------------------------------------------------- 1. adds and reductions


def test_concurrent_adds_and_reductions_lose_nothing(live_server):
    """~400 concurrent adds/reductions on three products from 24 threads into 4 workers.

    * `scarce`: S units and N > S concurrent reductions by 1: exactly S succeed,
      exactly N - S answer 409 INSUFFICIENT_STOCK, and it ends at 0.
    * `busy` and `empty`: random adds and larger random reductions, far more
      demand than supply, so many 409s interleave with successes.
    """
    url = live_server.url
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    starts = {"scarce": 40, "busy": 30, "empty": 0}
    ids = {key: create_product(url, key, start) for key, start in starts.items()}

    plan = [Outcome("reduce", "scarce", 1) for _ in range(100)]
    for _ in range(150):
        if rng.random() < 0.4:
            plan.append(Outcome("add", "busy", rng.randint(1, 10)))
        else:
            plan.append(Outcome("reduce", "busy", rng.randint(1, 15)))
    for _ in range(150):
        if rng.random() < 0.5:
            plan.append(Outcome("add", "empty", rng.randint(1, 5)))
        else:
            plan.append(Outcome("reduce", "empty", rng.randint(1, 8)))
    rng.shuffle(plan)

    outcomes = Burst(url, ids).run(plan)
    context = f"(seed {seed})"

    assert_only_expected_statuses(outcomes, live_server.log_path)

    for key, product_id in ids.items():
        mine = [o for o in outcomes if o.product == key]
        added = sum(o.quantity for o in mine if o.action == "add" and o.ok)
        reduced = sum(o.quantity for o in mine if o.action == "reduce" and o.ok)
        final = current_quantity(url, product_id)
        assert final >= 0, f"{key} {context}"
        assert final == starts[key] + added - reduced, (
            f"lost update on {key} {context}: start {starts[key]} + added {added} - reduced {reduced}"
            f" = {starts[key] + added - reduced}, but the stock says {final}"
        )

        logs = product_logs(url, product_id)
        successes = sum(o.ok for o in mine)
        assert len(logs) == successes + (1 if starts[key] else 0), (
            f"{key} {context}: {len(logs)} log rows for {successes} successful changes"
        )
        assert_unbroken_chain(logs, final, f"{key} {context}")
        assert_responses_match_ledger(mine, logs, f"{key} {context}")

        # Every refusal saw a level the product really held, and it was too low.
        held = {starts[key]} | {row["after_quantity"] for row in logs}
        for refused in (o for o in mine if o.status == 409):
            details = refused.body["error"]["details"]
            assert details["requested"] == refused.quantity, refused.describe()
            assert details["available"] < refused.quantity, refused.describe()
            assert details["available"] in held, f"{key} {context}: refusal saw a level never held: {refused.describe()}"

    scarce = [o for o in outcomes if o.product == "scarce"]
    assert sum(o.ok for o in scarce) == starts["scarce"], f"{context} {Counter(o.status for o in scarce)}"
    assert sum(o.status == 409 for o in scarce) == len(scarce) - starts["scarce"]
    assert current_quantity(url, ids["scarce"]) == 0
    assert all(o.body["error"]["details"]["available"] == 0 for o in scarce if o.status == 409), (
        "a reduction by 1 was refused while stock was left"
    )
    # The random products really were contended: both outcomes happened.
    for key in ("busy", "empty"):
        statuses = Counter(o.status for o in outcomes if o.product == key and o.action == "reduce")
        assert statuses[200] and statuses[409], f"{key} {context}: {statuses}"

    assert_clean_log(live_server.log_path)


def test_verify_while_stock_changes_reports_no_problem_that_is_not_there(live_server):
    """`/api/logs/verify` reads one snapshot: movements committed while it reads the stock
    rows, streams the ledger and sums the days are never taken for a broken ledger."""
    url = live_server.url
    ids = [create_product(url, f"verify-{n}", 10) for n in range(3)]
    stop = threading.Event()

    def keep_adding(product_id: int) -> int:
        added = 0
        with requests.Session() as session:
            while not stop.is_set():
                response = session.post(f"{url}/api/stock/add", json={"product_id": product_id, "quantity": 1},
                                        timeout=REQUEST_TIMEOUT)
                assert response.status_code == 200, response.text
                added += 1
        return added

    with ThreadPoolExecutor(len(ids)) as pool:
        writers = [pool.submit(keep_adding, product_id) for product_id in ids]
        try:
            reports = [requests.get(f"{url}/api/logs/verify", timeout=REQUEST_TIMEOUT).json()["data"]
                       for _ in range(20)]
        finally:
            stop.set()
        added = sum(writer.result() for writer in writers)
    assert added > 0
    assert [report["problems"] for report in reports] == [[]] * len(reports)
    assert_clean_log(live_server.log_path)


def test_writers_queued_behind_a_long_held_sqlite_lock_all_answer_503_in_time(tmp_path):
    """Another program holds the SQLite file's write lock (a bulk load, say). Each of five
    writers, one per worker, waits at most SQLITE_BUSY_TIMEOUT for its turn and again for
    the lock, and answers 503 itself, before gunicorn's timeout would kill its worker.
    Without a limit on the turn, the fifth waited for the four before it (4 × 1 s) and
    then for the lock: longer than the 4 s timeout."""
    path = tmp_path / "held.db"
    server = LiveServer(f"sqlite:///{path}", 5, tmp_path / "gunicorn.log",
                        extra_env={"SQLITE_BUSY_TIMEOUT": "1", "GUNICORN_TIMEOUT": "4"})
    try:
        server.wait_ready()
        product_id = create_product(server.url, "held", 10)
        outsider = sqlite3.connect(path, isolation_level=None)
        outsider.execute("BEGIN IMMEDIATE")
        try:
            def add(_: int) -> requests.Response:
                return requests.post(f"{server.url}/api/stock/add", json={"product_id": product_id, "quantity": 1},
                                     timeout=REQUEST_TIMEOUT)

            with ThreadPoolExecutor(5) as pool:
                answers = list(pool.map(add, range(5)))
        finally:
            outsider.rollback()
            outsider.close()
        assert [(a.status_code, a.json()["error"]["code"]) for a in answers] == [(503, "SERVICE_UNAVAILABLE")] * 5
        assert current_quantity(server.url, product_id) == 10
        assert requests.post(f"{server.url}/api/stock/add", json={"product_id": product_id, "quantity": 1},
                             timeout=REQUEST_TIMEOUT).status_code == 200
        assert "WORKER TIMEOUT" not in server.log_path.read_text()
    finally:
        server.stop()


# ------------------------------ 1b. the answer shows the change it made


LEVEL_ADDS = 240


@pytest.mark.workers(8)
def test_each_change_answers_the_level_it_produced(live_server):
    """240 concurrent adds of 1 from 0 into 8 workers: every answer's
    `stock.quantity` is the level its own change produced (its `log.after_quantity`),
    not a later re-read that already includes other requests' changes."""
    url = live_server.url
    ids = {"levels": create_product(url, "levels", 0)}
    outcomes = Burst(url, ids).run([Outcome("add", "levels", 1) for _ in range(LEVEL_ADDS)])
    assert_only_expected_statuses(outcomes, live_server.log_path)
    logged_levels = sorted(o.body["data"]["log"]["after_quantity"] for o in outcomes)
    assert logged_levels == list(range(1, LEVEL_ADDS + 1)), "each add produced its own level"
    assert current_quantity(url, ids["levels"]) == LEVEL_ADDS
    assert_clean_log(live_server.log_path)
    mismatched = sorted(
        (o.body["data"]["log"]["after_quantity"], o.body["data"]["stock"]["quantity"])
        for o in outcomes
        if o.body["data"]["stock"]["quantity"] != o.body["data"]["log"]["after_quantity"]
    )
    if mismatched:
        pytest.fail(
            f"{len(mismatched)} of {LEVEL_ADDS} answers show a stock.quantity other than their own"
            f" log's after_quantity, as (log.after_quantity, stock.quantity): {mismatched[:10]}",
            pytrace=False,
        )


# ---------------------------------- 2. adjusts mixed with adds and reductions


def test_concurrent_adjusts_adds_and_reductions_keep_the_chain(live_server):
    """Stocktakes (absolute counts, some also setting thresholds) racing adds and
    reductions on one product: every answer is 200 or 409 INSUFFICIENT_STOCK, each
    success has its ledger row, and the chain from 0 to the current stock is unbroken."""
    url = live_server.url
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    start = 100
    ids = {"counted": create_product(url, "counted", start, min_quantity=5)}

    plan = []
    for _ in range(180):
        roll = rng.random()
        if roll < 0.25:
            plan.append(Outcome("adjust", "counted", rng.randint(0, 150)))
        elif roll < 0.35:
            # A stocktake that also moves the thresholds and location; they must not disturb the count.
            settings = {"min_quantity": rng.randint(0, 10), "location": f"A-{rng.randint(1, 4)}"}
            plan.append(Outcome("adjust", "counted", rng.randint(0, 150), settings))
        elif roll < 0.65:
            plan.append(Outcome("add", "counted", rng.randint(1, 20)))
        else:
            plan.append(Outcome("reduce", "counted", rng.randint(1, 40)))
    # A few adjusts to the level the product starts at, which may well be a no-op.
    plan += [Outcome("adjust", "counted", start) for _ in range(5)]
    rng.shuffle(plan)

    outcomes = Burst(url, ids).run(plan)
    context = f"(seed {seed})"

    assert_only_expected_statuses(outcomes, live_server.log_path)
    final = current_quantity(url, ids["counted"])
    logs = product_logs(url, ids["counted"])
    assert_unbroken_chain(logs, final, f"counted {context}")
    assert_responses_match_ledger(outcomes, logs, f"counted {context}")

    logged = [o for o in outcomes if o.ok and o.body["data"]["log"] is not None]
    assert len(logs) == 1 + len(logged), f"{context}: {len(logs)} rows for {len(logged)} logged changes"
    # start + every successful change (adds, reductions and the signed adjust deltas) == final
    net = sum(
        {"add": o.quantity, "reduce": -o.quantity, "adjust": o.body["data"]["log"]["quantity"]}[o.action]
        for o in logged
    )
    assert start + net == final, f"{context}: start {start} + net {net} != final {final}"
    assert Counter(o.action for o in logged)["adjust"] > 0

    assert_clean_log(live_server.log_path)


# ------------------------------- 2b. two app instances on one database


@pytest.mark.workers(2)
@pytest.mark.parametrize("through_nginx", [
    pytest.param(False, id="alternating"),
    pytest.param(True, id="through-nginx", marks=pytest.mark.skipif(NGINX_MISSING, reason="nginx not installed")),
])
def test_two_app_instances_on_one_database_lose_nothing(live_server, db_url, tmp_path, through_nginx):
    """SPEC §4.2 'several app instances on one database': two gunicorns (2 workers
    each) share the database; requests alternate between them, or go through Nginx
    with the project's deploy/nginx site balancing both."""
    second = LiveServer(db_url, 2, tmp_path / "gunicorn-second.log")
    proxy = None
    try:
        second.wait_ready()
        url = live_server.url
        if through_nginx:
            (tmp_path / "nginx").mkdir()
            proxy = NginxProxy([live_server, second], tmp_path / "nginx")
            url = proxy.url
        seed = random.randrange(2**32)
        rng = random.Random(seed)
        starts = {"shared": 25, "contended": 10}
        ids = {key: create_product(url, key, start) for key, start in starts.items()}
        plan = [Outcome("reduce", "contended", 1) for _ in range(40)]
        for _ in range(120):
            if rng.random() < 0.45:
                plan.append(Outcome("add", "shared", rng.randint(1, 6)))
            else:
                plan.append(Outcome("reduce", "shared", rng.randint(1, 9)))
        rng.shuffle(plan)

        outcomes = Burst(url, ids).run(plan, urls=[url] if through_nginx else [live_server.url, second.url])
        context = f"(seed {seed})"
        assert_only_expected_statuses(outcomes, live_server.log_path, second.log_path)
        for key, product_id in ids.items():
            mine = [o for o in outcomes if o.product == key]
            added = sum(o.quantity for o in mine if o.action == "add" and o.ok)
            reduced = sum(o.quantity for o in mine if o.action == "reduce" and o.ok)
            # Both instances read the same state.
            finals = {current_quantity(server_url, product_id) for server_url in (url, second.url)}
            assert finals == {starts[key] + added - reduced}, f"lost update on {key} {context}: {finals}"
            logs = product_logs(second.url, product_id)
            assert len(logs) == sum(o.ok for o in mine) + 1
            assert_unbroken_chain(logs, finals.pop(), f"{key} {context}")
            assert_responses_match_ledger(mine, logs, f"{key} {context}")
        contended = [o for o in outcomes if o.product == "contended"]
        assert Counter(o.status for o in contended) == {200: 10, 409: 30}, context
        if through_nginx:
            upstreams = {line.split()[0] for line in (tmp_path / "nginx" / "access.log").read_text().splitlines()}
            assert upstreams == {f"127.0.0.1:{live_server.port}", f"127.0.0.1:{second.port}"}, "Nginx balanced both"
    finally:
        if proxy:
            proxy.stop()
        second.stop()
    assert_clean_log(live_server.log_path)
    assert_clean_log(second.log_path)


@pytest.mark.workers(1)
@pytest.mark.skipif(NGINX_MISSING, reason="nginx not installed")
def test_what_nginx_answers_itself_is_the_json_envelope_with_a_request_id(live_server, db_url, tmp_path):
    """A body past Nginx's own limit, and no instance to answer: JSON, never Nginx's HTML."""
    second = LiveServer(db_url, 1, tmp_path / "gunicorn-second.log")
    (tmp_path / "nginx").mkdir()
    second.wait_ready()
    proxy = NginxProxy([live_server, second], tmp_path / "nginx")
    try:
        huge = requests.post(f"{proxy.url}/api/stock/add", data=b"x" * (3 * 1024 * 1024),
                             headers={"Content-Type": "application/json"}, timeout=REQUEST_TIMEOUT)
        second.stop()
        live_server.stop()
        unreachable = requests.get(f"{proxy.url}/api/stock/", timeout=REQUEST_TIMEOUT)
    finally:
        proxy.stop()
        second.stop()
    for response, status, code in ((huge, 413, "PAYLOAD_TOO_LARGE"), (unreachable, 503, "SERVICE_UNAVAILABLE")):
        assert (response.status_code, response.headers["Content-Type"]) == (status, "application/json")
        assert response.json()["success"] is False and response.json()["error"]["code"] == code
        assert response.headers["X-Request-ID"]


# ------------------------------------------ 3. schema creation does not race

SCHEMA_WORKERS = 8
ACCESS_LINE = re.compile(r"^ACCESS <(\d+)> (\d{3}) (\S+) (\S+)$", re.MULTILINE)
BOOT_LINE = re.compile(r"Booting worker with pid: (\d+)")


def _table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                rows = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            else:
                rows = connection.execute(text("SHOW TABLES"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def _raw_request(port: int, path: str, body: bytes) -> tuple[socket.socket, bytes]:
    """Open a connection and send all of a POST except its final header line, so the
    worker that accepts it stays busy with it until `_finish` sends the rest."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT[1])
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
    )
    return sock, b"Connection: close\r\n\r\n" + body


def _finish(sock: socket.socket, rest: bytes) -> int:
    with sock:
        sock.sendall(rest)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    status_line = response.split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def _pids_serving_at_once(server: LiveServer, workers: int) -> set[str]:
    """Hold `workers` half-sent product creations open at once: each live sync
    worker accepts exactly one and blocks on it, so when they complete every
    worker has served (and written through) one of them. Returns the pids the
    access log shows for them."""
    marker = uuid.uuid4().hex[:8]
    pending = []
    for i in range(workers):
        body = f'{{"name": "架构竞争{i}", "sku": "SCHEMA-{marker}-{i}", "price": 1, "initial_quantity": 1}}'.encode()
        pending.append(_raw_request(server.port, f"/api/products/?m={marker}", body))
    time.sleep(1.0)  # let every worker accept one
    statuses = [_finish(sock, rest) for sock, rest in pending]
    assert statuses == [201] * workers, statuses
    time.sleep(0.2)
    log = server.log_path.read_text(errors="replace")
    return {pid for pid, _status, _method, path in ACCESS_LINE.findall(log) if marker in path}


def test_schema_creation_does_not_race_with_eight_workers(empty_database_url, tmp_path, monkeypatch):
    """8 gunicorn workers boot at once on a database without tables: the server comes
    up with its tables, every one of the 8 workers serves writes, none is respawned,
    and the log has no 'already exists', Traceback or failed boot. Each worker imports
    the app itself here (no preload), as instances starting together would."""
    url = make_url(empty_database_url)
    if url.get_backend_name() == "sqlite":
        assert not os.path.exists(url.database), "the database file must not exist yet"
    else:
        assert not _table_names(empty_database_url), "the database must start empty"
    # The access log (pid, status, method, path) shows which worker answered what;
    # GUNICORN_CMD_ARGS sits between gunicorn.conf.py and the command line.
    monkeypatch.setenv(
        "GUNICORN_CMD_ARGS", "--access-logfile - --access-logformat 'ACCESS %(p)s %(s)s %(m)s %(U)s%(q)s'"
    )
    monkeypatch.setenv("GUNICORN_PRELOAD", "false")
    server = LiveServer(empty_database_url, SCHEMA_WORKERS, tmp_path / "gunicorn-schema.log")
    try:
        with _explained_by_log(server):
            _check_every_worker_serves(server, empty_database_url)
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert not re.search(r"Worker \(pid:\d+\) (exited|was sent)", log), log[-3000:]
    assert_clean_log(server.log_path)


@contextmanager
def _explained_by_log(server: LiveServer):
    """A connection error here usually means gunicorn died: show why."""
    try:
        yield
    except (OSError, requests.RequestException) as exc:
        tail = server.log_path.read_text(errors="replace")[-4000:]
        pytest.fail(f"{type(exc).__name__}: {exc}\n--- gunicorn log (tail) ---\n{tail}", pytrace=False)


def _check_every_worker_serves(server: LiveServer, database_url: str) -> None:
    server.wait_ready(seconds=60)
    assert {"products", "stock", "stock_logs"} <= _table_names(database_url)

    # Every worker serves: retry while a slow worker is still importing the app.
    served: set[str] = set()
    deadline = time.monotonic() + 30
    while len(served) < SCHEMA_WORKERS and time.monotonic() < deadline:
        served |= _pids_serving_at_once(server, SCHEMA_WORKERS)
    log = server.log_path.read_text(errors="replace")
    booted = set(BOOT_LINE.findall(log))
    assert len(booted) == SCHEMA_WORKERS, f"booted {booted}:\n{log[-3000:]}"
    assert served == booted, f"workers that served {sorted(served)} != workers booted {sorted(booted)}"

    # And then under load from 24 threads, nothing fails.
    product_id = create_product(server.url, "schema", 0)
    outcomes = Burst(server.url, {"schema": product_id}).run([Outcome("add", "schema", 1) for _ in range(96)])
    assert_only_expected_statuses(outcomes, server.log_path)
    assert current_quantity(server.url, product_id) == 96
    assert server.process.poll() is None, "gunicorn exited"


# ------------------------------------------- recycled workers, forked from the master

RECYCLE_AFTER = 15  # requests per worker: a 240-request burst recycles each worker many times


def _database_handles(pid: int, url: str) -> list[str]:
    """The open descriptors of process `pid` on the test database: the SQLite file (and
    its -wal/-shm), or TCP connections to the MySQL port."""
    parsed = make_url(url)
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # closed while listing
            continue
    if parsed.get_backend_name() == "sqlite":
        return [link for link in links if link.startswith(os.path.realpath(parsed.database))]
    port = f":{parsed.port or 3306:04X}"
    to_database = set()
    for family in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{family}") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        to_database |= {row[9] for row in rows if row[2].endswith(port)}
    return [link for link in links if link.startswith("socket:[") and link[8:-1] in to_database]


def test_workers_recycled_from_the_preloaded_master_lose_nothing(db_url, tmp_path):
    """The master imports the app (migrating the schema) and forks every worker, also
    each one `max_requests` recycles. It keeps no database connection to hand down, and
    a burst through workers recycled again and again counts every unit."""
    server = LiveServer(db_url, 2, tmp_path / "gunicorn-recycled.log", extra_env={
        "GUNICORN_MAX_REQUESTS": str(RECYCLE_AFTER), "GUNICORN_MAX_REQUESTS_JITTER": "0"})
    try:
        with _explained_by_log(server):
            server.wait_ready()
            assert _database_handles(server.process.pid, db_url) == []
            product_id = create_product(server.url, "recycled", 0)
            outcomes = Burst(server.url, {"p": product_id}).run([Outcome("add", "p", 1) for _ in range(240)])
            assert [o.status for o in outcomes] == [200] * 240, [o.error or o.body for o in outcomes if not o.ok][:3]
            assert current_quantity(server.url, product_id) == 240
            assert_unbroken_chain(product_logs(server.url, product_id), 240, "recycled")
            assert _database_handles(server.process.pid, db_url) == []
    finally:
        server.stop()
    log = server.log_path.read_text(errors="replace")
    assert log.count("Autorestarting worker") >= 240 // RECYCLE_AFTER // 2, log[-3000:]
    assert_clean_log(server.log_path)


def test_every_worker_starts_with_the_loaded_app_frozen_out_of_garbage_collection(db_url, tmp_path):
    """A full collection must not walk the app's ~100,000 long-lived objects (tens of
    milliseconds each time, every few seconds under traffic): the master freezes them
    before it forks, and each worker what it has loaded, recycled workers too."""
    server = LiveServer(db_url, 2, tmp_path / "gunicorn-frozen.log", extra_env={
        "LOG_LEVEL": "INFO", "GUNICORN_MAX_REQUESTS": "5", "GUNICORN_MAX_REQUESTS_JITTER": "0"})
    frozen_line = re.compile(r"worker (\d+): (\d+) objects frozen out of garbage collection")
    try:
        server.wait_ready()
        for _ in range(12):
            requests.get(f"{server.url}/health/live", timeout=20)
        deadline = time.monotonic() + 30  # a worker booted by the last recycling is still starting
        while time.monotonic() < deadline:
            log = server.log_path.read_text(errors="replace")
            booted, frozen = BOOT_LINE.findall(log), dict(frozen_line.findall(log))
            if set(frozen) == set(booted):
                break
            time.sleep(0.2)
    finally:
        server.stop()
    assert len(booted) > 2 and set(frozen) == set(booted), log[-3000:]
    assert min(int(count) for count in frozen.values()) > 50_000, frozen
    master = re.search(r"master: (\d+) objects frozen out of garbage collection", log)
    assert master and int(master.group(1)) > 50_000, log[-3000:]
