"""SPEC §4 on a three-node MariaDB Galera cluster (deploy/galera/cluster.sh; docs/cluster.md):
app instances on different nodes lose nothing, a node cut off from the cluster answers
quick 503s, the writer node killed under load behind HAProxy ends exact for clients that
retry with their Idempotency-Key, and it rejoins by IST."""
import os
import random
import subprocess
import threading
import time
from collections import Counter

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.cluster import (
    GALERA_URLS,
    HARNESS,
    TIMEOUT,
    HAProxy,
    Keyed,
    KeyedClients,
    assert_nodes_agree,
    create_cluster_database,
    create_product,
    drop_cluster_database,
    ensure_cluster,
    error_log,
    needs_cluster,
    node,
    quantity,
    start_instances,
    verify,
)

pytestmark = [pytest.mark.cluster, needs_cluster]


@pytest.fixture
def healthy_cluster():
    """Every test starts on three synced nodes, so one that fails leaves nothing behind."""
    ensure_cluster()


@pytest.fixture
def cluster_urls(healthy_cluster):
    """A fresh, empty database on the cluster: its URL through node 1, 2 and 3."""
    urls = create_cluster_database()
    try:
        yield urls
    finally:
        drop_cluster_database(urls)


@pytest.fixture
def instances(cluster_urls, tmp_path):
    """One gunicorn (2 workers) per node, started at the same moment on the empty database."""
    servers = start_instances(cluster_urls, tmp_path)
    yield servers
    for server in servers:
        server.stop()


def _logs_show(servers, *patterns) -> list[str]:
    return [line for server in servers for line in server.log_path.read_text(errors="replace").splitlines()
            if any(pattern in line for pattern in patterns)]


def assert_exact(changes: list[Keyed], starts: dict[int, int], urls: list[str]) -> None:
    """Every change ended in an answer; per product the final quantity is the start plus
    the successes, through every instance; one ledger row per success; verify clean."""
    unanswered = [c for c in changes if c.status not in (200, 409)]
    assert not unanswered, f"{len(unanswered)} changes never answered: {[(c.status, c.body) for c in unanswered[:3]]}"
    refused = [c for c in changes if c.status == 409]
    assert all(c.action == "reduce" and c.code == "INSUFFICIENT_STOCK" for c in refused), refused[:3]
    for product_id, start in starts.items():
        mine = [c for c in changes if c.product_id == product_id and c.status == 200]
        expected = start + sum(c.quantity if c.action == "add" else -c.quantity for c in mine)
        assert {quantity(url, product_id) for url in urls} == {expected}, f"product {product_id}"
        logs = requests.get(f"{urls[-1]}/api/logs/", params={"product_id": product_id, "per_page": 100},
                            timeout=TIMEOUT).json()["data"]
        assert logs["pagination"]["total"] == len(mine) + 1, f"product {product_id}: one ledger row per success"
        answered = {c.body["data"]["log"]["id"] for c in mine}
        assert len(answered) == len(mine), "two changes answered the same ledger row"
    for url in urls:
        assert verify(url)["problems"] == [], url


def test_three_instances_starting_at_once_on_an_empty_database_all_serve(instances, cluster_urls):
    for server in instances:
        ready = requests.get(f"{server.url}/health/ready", timeout=TIMEOUT).json()["data"]
        assert ready["migrations"]["up_to_date"] and ready["cluster"]["synced"], ready
    assert not _logs_show(instances, "already exists", "Traceback", "Worker failed to boot")
    engine = create_engine(cluster_urls[1])
    with engine.connect() as connection:
        tables = connection.execute(text(
            "SELECT t.table_name, t.engine, COUNT(c.constraint_name) FROM information_schema.tables t"
            " LEFT JOIN information_schema.table_constraints c ON c.table_schema = t.table_schema"
            " AND c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY'"
            " WHERE t.table_schema = DATABASE() GROUP BY t.table_name, t.engine")).all()
    engine.dispose()
    assert len(tables) > 5 and {(engine_name, keys) for _name, engine_name, keys in tables} == {("InnoDB", 1)}, (
        "Galera replicates InnoDB tables with primary keys only")


def test_instances_on_three_nodes_lose_nothing_and_the_nodes_agree(instances, cluster_urls):
    """Multi-primary: 16 threads, each change sent to the instance of one node, on 4 hot
    products and 24 quiet ones; a 503 is retried with the same key."""
    urls = [server.url for server in instances]
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    starts = {create_product(urls[i % 3], f"P{i}", 30): 30 for i in range(28)}
    products = list(starts)
    hot, quiet = products[:4], products[4:]
    changes = [Keyed(rng.choice(("add", "reduce")), rng.choice(hot if rng.random() < 0.5 else quiet),
                     rng.randint(1, 5)) for _ in range(600)]
    changes = KeyedClients(threads=16).run(changes, urls)

    first = Counter(c.first_status for c in changes)
    print(f"\nmulti-primary first answers (seed {seed}): {dict(first)}; "
          f"retried {sum(c.attempts > 1 for c in changes)} of {len(changes)}")
    assert_exact(changes, starts, urls)
    assert_nodes_agree(cluster_urls)
    assert not _logs_show(instances, "Traceback", "unhandled error")


def test_changes_of_different_products_through_different_nodes_never_conflict(cluster_urls, tmp_path):
    """Instance 1 moves only one product, instance 3 only four others, with in-service
    retries off (DB_RETRY_BUDGET=0) so that a certification conflict would answer 503:
    the running totals they add to are sharded by product, so none does."""
    servers = start_instances(cluster_urls, tmp_path, DB_RETRY_BUDGET="0")
    try:
        first, third = servers[0].url, servers[2].url
        products = [create_product(first, f"H{i}", 1) for i in range(5)]
        rng = random.Random()
        # KeyedClients sends change i through urls[i % 2]: even ones via node 1, odd ones via node 3.
        changes = [Keyed("add", products[0] if i % 2 == 0 else rng.choice(products[1:]), rng.randint(1, 5))
                   for i in range(600)]
        changes = KeyedClients(threads=16).run(changes, [first, third])
        first_answers = Counter(c.first_status for c in changes)
        print(f"\nproduct 1 via node 1, products 2-5 via node 3, no retries: first answers {dict(first_answers)}")
        assert_exact(changes, dict.fromkeys(products, 1), [server.url for server in servers])
        assert first_answers[503] == 0, "changes of different products conflicted"
    finally:
        for server in servers:
            server.stop()


def test_a_node_cut_off_from_the_cluster_is_not_ready_and_answers_quick_503s(instances, cluster_urls):
    product = create_product(instances[0].url, "cut", 5)
    cut_off = create_engine(cluster_urls[2], isolation_level="AUTOCOMMIT")
    with cut_off.connect() as connection:
        status = lambda name: connection.execute(text(f"SHOW STATUS LIKE '{name}'")).one()[1]  # noqa: E731
        connection.execute(text("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'"))
        try:
            _wait_for(lambda: status("wsrep_ready") == "OFF")
            ready = requests.get(f"{instances[2].url}/health/ready", timeout=TIMEOUT)
            assert ready.status_code == 503, ready.text
            assert ready.json()["error"]["details"]["cluster"]["synced"] is False, ready.text
            started = time.monotonic()
            write = requests.post(f"{instances[2].url}/api/stock/add", json={"product_id": product, "quantity": 1},
                                  timeout=TIMEOUT)
            read = requests.get(f"{instances[2].url}/api/stock/product/{product}", timeout=TIMEOUT)
            assert time.monotonic() - started < 2
            for response in (write, read):
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
                assert response.headers["Retry-After"] == "1"
            assert requests.get(f"{instances[0].url}/health/ready", timeout=TIMEOUT).status_code == 200
        finally:
            connection.execute(text("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'"))
            _wait_for(lambda: status("wsrep_local_state") == "4")
    cut_off.dispose()
    _wait_for(lambda: requests.get(f"{instances[2].url}/health/ready", timeout=TIMEOUT).status_code == 200)
    assert quantity(instances[2].url, product) == 5
    assert not _logs_show(instances, "unhandled error")


def test_the_writer_node_killed_under_load_behind_haproxy_ends_exact_and_rejoins_by_ist(
        instances, cluster_urls, tmp_path):
    proxy = HAProxy(instances, tmp_path)
    try:
        starts = {create_product(proxy.url, f"K{i}", 50): 50 for i in range(6)}
        rng = random.Random()
        changes = [Keyed(rng.choice(("add", "reduce")), rng.choice(list(starts)), rng.randint(1, 4))
                   for _ in range(500)]
        clients = KeyedClients(threads=8)
        killer = threading.Timer(1.5, node, ("kill", 1))
        killer.start()
        changes = clients.run(changes, [proxy.url])
        killer.join()
        print(f"\nthrough HAProxy, node 1 killed: first answers {dict(Counter(c.first_status for c in changes))}, "
              f"retried {sum(c.attempts > 1 for c in changes)}")
        assert any(c.attempts > 1 for c in changes), "the kill happened after the load"
        assert_exact(changes, starts, [proxy.url, instances[1].url, instances[2].url])
    finally:
        proxy.stop()
        logged_before = len(error_log(1))
        node("restart", 1)
    assert "IST received" in error_log(1)[logged_before:], "node 1 caught up by IST, not by a full state transfer"
    _wait_for(lambda: requests.get(f"{instances[0].url}/health/ready", timeout=TIMEOUT).status_code == 200)
    assert_nodes_agree(cluster_urls)
    assert verify(instances[0].url)["problems"] == []


def test_a_restart_that_cannot_recover_fails_within_seconds_and_the_cluster_is_brought_back(healthy_cluster):
    """--wsrep-recover runs within bounded memory: one that cannot fit fails at once, loudly,
    instead of growing until the machine's OOM killer steps in."""
    node("shutdown", 3)
    started = time.monotonic()
    restart = subprocess.run([str(HARNESS), "restart", "3"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "GALERA_RECOVER_MEMORY": "100M"})
    assert restart.returncode != 0 and "--wsrep-recover failed" in restart.stderr, restart.stderr
    assert time.monotonic() - started < 10
    ensure_cluster()
    for url in GALERA_URLS:
        engine = create_engine(url)
        with engine.connect() as connection:
            status = dict(connection.execute(text("SHOW STATUS WHERE Variable_name IN"
                                                  " ('wsrep_local_state', 'wsrep_cluster_size')")).all())
        engine.dispose()
        assert status == {"wsrep_local_state": "4", "wsrep_cluster_size": "3"}, (url, status)


def _wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def test_causal_reads_see_a_write_made_through_another_node_at_once(cluster_urls, tmp_path):
    """DB_CAUSAL_READS=true: every read through instance 2 (node 2) sees the add that
    instance 1 (node 1) answered just before, while instance 3 keeps the cluster busy."""
    servers = start_instances(cluster_urls, tmp_path, DB_CAUSAL_READS="true")
    try:
        writer, reader, busy = (server.url for server in servers)
        product = create_product(writer, "causal", 0)
        others = [create_product(busy, f"load{i}", 1000) for i in range(4)]
        load = [Keyed("add", others[i % 4], 1) for i in range(400)]
        background = threading.Thread(target=KeyedClients(threads=4).run, args=(load, [busy]))
        background.start()
        stale, read_seconds = 0, []
        with requests.Session() as write_session, requests.Session() as read_session:
            for expected in range(1, 151):
                added = write_session.post(f"{writer}/api/stock/add", json={"product_id": product, "quantity": 1},
                                           timeout=TIMEOUT)
                assert added.status_code == 200, added.text
                started = time.monotonic()
                read = read_session.get(f"{reader}/api/stock/product/{product}", timeout=TIMEOUT)
                read_seconds.append(time.monotonic() - started)
                stale += read.json()["data"]["quantity"] != expected
        background.join()
        read_seconds.sort()
        print(f"\ncausal reads: {stale} stale of 150; read median {read_seconds[75] * 1000:.1f} ms,"
              f" p95 {read_seconds[142] * 1000:.1f} ms")
        assert stale == 0
    finally:
        for server in servers:
            server.stop()
