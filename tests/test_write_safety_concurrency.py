"""Write safety under real concurrency (SPEC §4, §6): gunicorn with 4 workers, real HTTP.

Every burst is released at once through a barrier; every wait is bounded.
"""
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests

HTTP_TIMEOUT = 60
REPLAYED = "Idempotent-Replayed"


# ---- helpers ----

def call(server, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{server.url}{path}", timeout=HTTP_TIMEOUT, **kwargs)


def create_product(server, sku: str, quantity: int) -> int:
    body = {"name": "并发商品", "sku": sku, "price": 1, "initial_quantity": quantity}
    response = call(server, "POST", "/api/products/", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def state(server, product_id: int) -> tuple[int, int]:
    """(current quantity, number of log rows) of a product."""
    quantity = call(server, "GET", f"/api/stock/product/{product_id}").json()["data"]["quantity"]
    logs = call(server, "GET", f"/api/logs/product/{product_id}").json()["data"]["pagination"]["total"]
    return quantity, logs


def assert_ledger_verifies(server) -> None:
    report = call(server, "GET", "/api/logs/verify").json()["data"]
    assert report["problems"] == [], report


def assert_chain_order_agrees(server, product_id: int) -> None:
    """Per product, id order, seq order and time order of the logs are one and the same."""
    logs = call(server, "GET", f"/api/logs/product/{product_id}", params={"per_page": 100}).json()["data"]["items"]
    by_id = sorted(logs, key=lambda log: log["id"])
    assert [log["seq"] for log in by_id] == list(range(1, len(logs) + 1))
    times = [datetime.fromisoformat(log["created_at"]) for log in by_id]
    assert times == sorted(times)


def fire_together(requests_to_send: list) -> list[requests.Response]:
    """Send each (method, path, kwargs) from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(requests_to_send))

    def send(server_method_path_kwargs):
        server, method, path, kwargs = server_method_path_kwargs
        barrier.wait(timeout=HTTP_TIMEOUT)
        return call(server, method, path, **kwargs)

    with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
        futures = [pool.submit(send, item) for item in requests_to_send]
        return [future.result(timeout=3 * HTTP_TIMEOUT) for future in futures]


def error_code(response: requests.Response) -> str | None:
    return response.json().get("error", {}).get("code") if response.status_code >= 400 else None


def assert_no_server_errors(responses) -> None:
    assert all(r.status_code < 500 for r in responses), [(r.status_code, r.text) for r in responses if r.status_code >= 500]


# ---- (a) one key, twenty requests at once ----

def test_same_idempotency_key_fired_at_once_applies_exactly_one_change(live_server):
    product_id = create_product(live_server, "BURST-1", 10)
    body = {"product_id": product_id, "quantity": 7, "reason": "重试风暴"}
    burst = [(live_server, "POST", "/api/stock/add", {"json": body, "headers": {"Idempotency-Key": "burst-key"}})] * 20

    responses = fire_together(burst)

    assert_no_server_errors(responses)
    # SPEC §6: a request whose twin is still in flight may answer 409 CONFLICT.
    assert all(r.status_code == 200 or error_code(r) == "CONFLICT" for r in responses), [r.text for r in responses]
    succeeded = [r for r in responses if r.status_code == 200]
    assert len({r.content for r in succeeded}) == 1
    originals = [r for r in succeeded if r.headers.get(REPLAYED) != "true"]
    assert len(originals) == 1
    assert state(live_server, product_id) == (17, 2)

    retry = call(live_server, "POST", "/api/stock/add", json=body, headers={"Idempotency-Key": "burst-key"})
    assert (retry.status_code, retry.content, retry.headers.get(REPLAYED)) == (200, originals[0].content, "true")
    assert_ledger_verifies(live_server)


def test_same_key_with_two_different_bodies_at_once_applies_one_of_them_once(live_server):
    product_id = create_product(live_server, "BURST-2", 10)
    bodies = [{"product_id": product_id, "quantity": 1 + n % 2} for n in range(10)]
    burst = [(live_server, "POST", "/api/stock/add", {"json": b, "headers": {"Idempotency-Key": "split"}}) for b in bodies]

    responses = fire_together(burst)

    assert_no_server_errors(responses)
    winners = [(b, r) for b, r in zip(bodies, responses) if r.status_code == 200]
    assert len({b["quantity"] for b, _ in winners}) == 1
    applied = winners[0][0]["quantity"]
    assert len({r.content for _, r in winners}) == 1
    for body, response in zip(bodies, responses):
        if response.status_code != 200:
            expected = "IDEMPOTENCY_KEY_REUSED" if body["quantity"] != applied else "CONFLICT"
            assert error_code(response) in {expected, "CONFLICT"}, response.text
    assert state(live_server, product_id) == (10 + applied, 2)


# ---- (b) crossing batches ----

def plan_batches(product_ids: list[int], count: int, seed: int = 20260601) -> list[tuple[list[dict], int | None]]:
    """`count` batches over the same products in shuffled orders; every fourth one carries
    an impossible reduction on purpose. Returns (changes, index expected to fail or None)."""
    rng = random.Random(seed)
    plans = []
    for number in range(count):
        chosen = rng.sample(product_ids, rng.choice([3, len(product_ids)]))
        changes = [
            {"action": rng.choice(["add", "reduce"]), "product_id": pid, "quantity": rng.randint(1, 20)}
            for pid in chosen + [rng.choice(chosen)]
        ]
        failing_at = None
        if number % 4 == 3:
            failing_at = rng.randrange(len(changes) + 1)
            changes.insert(failing_at, {"action": "reduce", "product_id": rng.choice(chosen), "quantity": 10**6})
        plans.append((changes, failing_at))
    return plans


def effects(changes: list[dict]) -> Counter:
    total = Counter()
    for change in changes:
        total[change["product_id"]] += change["quantity"] if change["action"] == "add" else -change["quantity"]
    return total


def test_crossing_batches_are_each_all_or_nothing_without_deadlock(live_server):
    start = 1000
    product_ids = [create_product(live_server, f"CROSS-{n}", start) for n in range(4)]
    plans = plan_batches(product_ids, 20)

    responses = fire_together(
        [(live_server, "POST", "/api/stock/batch", {"json": {"changes": changes}}) for changes, _ in plans]
    )

    assert_no_server_errors(responses)
    expected_totals, expected_logs = Counter(), Counter(product_ids)
    for (changes, failing_at), response in zip(plans, responses):
        if failing_at is None:
            assert response.status_code == 200, response.text
            assert len(response.json()["data"]["results"]) == len(changes)
            for pid, delta in effects(changes).items():
                expected_totals[pid] += delta
            expected_logs.update(change["product_id"] for change in changes)
        else:
            assert response.status_code == 409, response.text
            error = response.json()["error"]
            assert (error["code"], error["details"]["index"]) == ("INSUFFICIENT_STOCK", failing_at)
    for pid in product_ids:
        assert state(live_server, pid) == (start + expected_totals[pid], expected_logs[pid])
        assert_chain_order_agrees(live_server, pid)
    assert_ledger_verifies(live_server)


# ---- (c) compare-and-set race ----

def test_compare_and_set_race_has_exactly_one_winner(live_server):
    product_id = create_product(live_server, "CAS-1", 50)
    body = {"product_id": product_id, "quantity": 1, "expected_quantity": 50}

    responses = fire_together([(live_server, "POST", "/api/stock/reduce", {"json": body})] * 10)

    assert_no_server_errors(responses)
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 409: 9}, [r.text for r in responses]
    losers = [r.json()["error"] for r in responses if r.status_code == 409]
    assert all(error["code"] == "CONFLICT" for error in losers)
    assert all(error["details"]["current_quantity"] == 49 for error in losers)
    assert state(live_server, product_id) == (49, 2)
    assert_ledger_verifies(live_server)
