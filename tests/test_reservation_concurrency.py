"""SPEC §9's guarantee under real concurrency: reservations, reductions and transfers
racing for the last units of a level, sent from many threads over HTTP to gunicorn
with several workers (and to two instances on one database): exactly as many grants
as there were units, `reserved` equal to the active holds, nothing negative."""
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from db import db
from models import Reservation
from tests.conftest import LiveServer
from tests.test_concurrency import REQUEST_TIMEOUT, assert_clean_log, create_product

UNITS = 10
REQUESTS = 60
THREADS = 12


def _race(urls: list[str], seed: int) -> tuple[int, Counter, int]:
    """Reserve, reduce and transfer one unit at a time, all at once, against a level of
    UNITS units; returns the product and the statuses per kind of request."""
    base = urls[0]
    product = create_product(base, "race", UNITS)
    warehouses = requests.get(f"{base}/api/warehouses/", timeout=REQUEST_TIMEOUT).json()["data"]["items"]
    source = next(w["id"] for w in warehouses if w["is_default"])
    target = requests.post(f"{base}/api/warehouses/", json={"code": f"R-{seed}", "name": "争抢仓"},
                           timeout=REQUEST_TIMEOUT).json()["data"]["id"]
    bodies = {
        "reserve": ("/api/reservations/", {"product_id": product, "quantity": 1, "reference": "抢购"}),
        "reduce": ("/api/stock/reduce", {"product_id": product, "quantity": 1}),
        "transfer": ("/api/stock/transfer", {"product_id": product, "quantity": 1, "from_warehouse_id": source,
                                             "to_warehouse_id": target}),
    }
    rng = random.Random(seed)
    plan = [rng.choice(["reserve", "reserve", "reduce", "transfer"]) for _ in range(REQUESTS)]
    barrier = threading.Barrier(THREADS)
    local = threading.local()

    def send(index_kind):
        index, kind = index_kind
        if not hasattr(local, "session"):
            local.session = requests.Session()
            barrier.wait(timeout=30)
        path, body = bodies[kind]
        response = local.session.post(f"{urls[index % len(urls)]}{path}", json=body, timeout=REQUEST_TIMEOUT)
        code = response.json().get("error", {}).get("code") if response.status_code != 201 else None
        return kind, response.status_code, code

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(send, enumerate(plan)))
    statuses = Counter((kind, status, code) for kind, status, code in results)
    return product, statuses, source


def _assert_exactly_the_units_were_granted(url: str, product: int, statuses: Counter, source: int) -> None:
    granted = {kind: sum(n for (k, status, _), n in statuses.items() if k == kind and status in (200, 201))
               for kind in ("reserve", "reduce", "transfer")}
    refused = {key: n for key, n in statuses.items() if key[1] not in (200, 201)}
    assert set(refused) <= {(kind, 409, "INSUFFICIENT_STOCK") for kind in granted}, statuses
    assert sum(granted.values()) == UNITS, statuses
    stock = requests.get(f"{url}/api/stock/product/{product}", timeout=REQUEST_TIMEOUT).json()["data"]
    level = next(level for level in stock["levels"] if level["warehouse_id"] == source)
    assert (level["quantity"], level["reserved"], level["available"]) == (
        UNITS - granted["reduce"] - granted["transfer"], granted["reserve"], 0), stock
    assert stock["reserved"] == granted["reserve"] and stock["quantity"] == UNITS - granted["reduce"]
    holds = requests.get(f"{url}/api/reservations/", params={"product_id": product, "status": "active"},
                         timeout=REQUEST_TIMEOUT).json()["data"]["pagination"]["total"]
    assert holds == granted["reserve"]
    assert requests.get(f"{url}/api/logs/verify", timeout=REQUEST_TIMEOUT).json()["data"]["problems"] == []


def test_racing_reservations_reductions_and_transfers_grant_exactly_the_units(live_server):
    seed = random.randrange(2**32)
    product, statuses, source = _race([live_server.url], seed)
    _assert_exactly_the_units_were_granted(live_server.url, product, statuses, source)
    assert_clean_log(live_server.log_path)


def test_two_instances_grant_exactly_the_units(live_server, db_url, tmp_path):
    second = LiveServer(db_url, 2, tmp_path / "gunicorn-second.log")
    try:
        second.wait_ready()
        seed = random.randrange(2**32)
        product, statuses, source = _race([live_server.url, second.url], seed)
        _assert_exactly_the_units_were_granted(second.url, product, statuses, source)
    finally:
        second.stop()
    assert_clean_log(live_server.log_path)
    assert_clean_log(second.log_path)


def test_the_expire_command_runs_beside_traffic(live_server, app, runner):
    """`reservations expire` marks lapsed holds while reservations and reductions of the
    same products keep coming: every lapsed one ends `expired` exactly once, and
    `reserved` stays the sum of the active holds."""
    url = live_server.url
    products = [create_product(url, f"exp{index}", 100) for index in range(3)]
    for product in products:
        for _ in range(10):
            response = requests.post(f"{url}/api/reservations/", json={"product_id": product, "quantity": 1,
                                                                       "expires_in": 1}, timeout=REQUEST_TIMEOUT)
            assert response.status_code == 201, response.text
    time.sleep(1.2)

    def traffic(product: int) -> list[int]:
        session = requests.Session()
        statuses = []
        for index in range(10):
            path, body = (("/api/reservations/", {"product_id": product, "quantity": 1}) if index % 2 else
                          ("/api/stock/reduce", {"product_id": product, "quantity": 1}))
            statuses.append(session.post(f"{url}{path}", json=body, timeout=REQUEST_TIMEOUT).status_code)
        return statuses

    with ThreadPoolExecutor(len(products)) as pool:
        running = [pool.submit(traffic, product) for product in products]
        result = runner.invoke(args=["reservations", "expire"])
        statuses = [status for future in running for status in future.result()]
    assert result.exit_code == 0, result.output
    assert set(statuses) <= {200, 201}, statuses
    listed = requests.get(f"{url}/api/reservations/", params={"status": "expired", "per_page": 100},
                          timeout=REQUEST_TIMEOUT).json()["data"]
    assert listed["pagination"]["total"] == 30
    with app.app_context():  # marked, not only read as expired
        assert db.session.scalar(select(func.count()).where(Reservation.status == "expired")) == 30
    for product in products:
        stock = requests.get(f"{url}/api/stock/product/{product}", timeout=REQUEST_TIMEOUT).json()["data"]
        assert (stock["quantity"], stock["reserved"]) == (95, 5)
    assert requests.get(f"{url}/api/logs/verify", timeout=REQUEST_TIMEOUT).json()["data"]["problems"] == []
    assert_clean_log(live_server.log_path)
