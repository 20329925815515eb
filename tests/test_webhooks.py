"""SPEC §10's webhooks end to end: real receivers (tests/webhooks_live.py), the real
worker process (`flask --app main webhooks run`), on SQLite or TEST_DATABASE_URL."""
import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import assert_error, ok
from tests.webhooks_live import PROJECT_DIR, Receiver, Workers

RETRY_BASE = 0.3
TIMEOUT = 1.5
MAX_ATTEMPTS = 3


def docs_verify():
    """The verification snippet of docs/events.md, run as written."""
    text = (PROJECT_DIR / "docs" / "events.md").read_text()
    snippet = re.search(r"### Verifying a delivery.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the document's own code, nothing from outside
    return namespace["verify"]


def wait_for(condition, seconds: float = 30, what: str = ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture
def start_worker(db_url, tmp_path: Path):
    """Start worker processes on the test's database, with short timeouts and backoff."""
    workers = Workers(tmp_path, {
        "APP_ENV": "testing", "TEST_DATABASE_URL": db_url, "WEBHOOK_RETRY_BASE": str(RETRY_BASE),
        "WEBHOOK_POLL_INTERVAL": "0.1", "WEBHOOK_TIMEOUT": str(TIMEOUT), "WEBHOOK_MAX_ATTEMPTS": str(MAX_ATTEMPTS)})
    yield workers.start
    workers.stop()


@pytest.fixture
def receivers():
    made = []

    def make(**options) -> Receiver:
        made.append(Receiver(**options))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def register(client, url: str, events=("*",)) -> dict:
    return ok(client.post("/api/webhooks/", json={"url": url, "events": list(events), "description": "测试接收端"}), 201)


def deliveries(client, webhook_id: int, **query) -> list[dict]:
    return ok(client.get(f"/api/webhooks/{webhook_id}/deliveries", query_string={"per_page": 100, **query}))["items"]


def test_signed_deliveries_arrive_and_verify_with_the_documented_snippet(client, create_product, receivers,
                                                                         start_worker):
    receiver = receivers()
    webhook = register(client, receiver.url + "/hook?source=inventory", ["stock.changed", "stock.low"])
    assert webhook["secret"].startswith("whsec_")
    assert "secret" not in ok(client.get(f"/api/webhooks/{webhook['id']}"))
    start_worker()
    product = create_product(initial_quantity=5, min_quantity=3)
    ok(client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 3}))
    arrived = wait_for(lambda: len(receiver.delivered()) == 3 and receiver.delivered(), what="3 deliveries")
    verify = docs_verify()
    feed = ok(client.get("/api/events/?after=0"))["items"]
    sent = [event for event in feed if event["type"] in ("stock.changed", "stock.low")]
    for request, event in zip(arrived, sent, strict=True):
        assert request.path == "/hook?source=inventory"
        assert verify(webhook["secret"], request.headers, request.body)
        assert not verify("whsec_another", request.headers, request.body)
        assert not verify(webhook["secret"], request.headers, request.body + b" ")
        assert json.loads(request.body) == event
        assert request.headers["X-Inventory-Event"] == event["type"]
        assert request.headers["Content-Type"] == "application/json"
    listed = deliveries(client, webhook["id"])
    assert {d["status"] for d in listed} == {"delivered"} and {d["attempts"] for d in listed} == {1}
    assert {d["uid"] for d in listed} == {r.headers["X-Inventory-Delivery"] for r in arrived}


def test_a_500_is_retried_with_the_same_delivery_id_after_the_backoff(client, create_product, receivers,
                                                                        start_worker):
    receiver = receivers(statuses=[500, 503])
    webhook = register(client, receiver.url)
    start_worker()
    create_product()
    wait_for(lambda: receiver.delivered(), what="delivered on the third attempt")
    attempts = receiver.received()
    assert [r.status for r in attempts] == [500, 503, 200]
    assert len({r.headers["X-Inventory-Delivery"] for r in attempts}) == 1
    assert attempts[1].started - attempts[0].started >= RETRY_BASE * 0.9
    assert attempts[2].started - attempts[1].started >= 2 * RETRY_BASE * 0.9
    [delivery] = deliveries(client, webhook["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3 and delivery["last_status_code"] == 200


def test_after_the_last_attempt_a_refused_delivery_is_failed_and_visible(client, create_product, receivers,
                                                                          start_worker):
    closed = receivers()
    closed.close()  # nobody listens on its port any more: connection refused
    redirecting = receivers(statuses=[302] * 5)
    refused, redirected = register(client, closed.url), register(client, redirecting.url)
    start_worker()
    create_product()
    for webhook in (refused, redirected):
        wait_for(lambda webhook=webhook: deliveries(client, webhook["id"], status="failed"), what="failed")
        [delivery] = deliveries(client, webhook["id"])
        assert delivery["attempts"] == MAX_ATTEMPTS
    assert "ConnectionRefused" in deliveries(client, refused["id"])[0]["last_error"]
    assert deliveries(client, redirected["id"])[0]["last_status_code"] == 302
    assert [r.path for r in redirecting.received()] == ["/"] * MAX_ATTEMPTS  # never followed


def test_a_stalling_receiver_times_out_and_holds_up_no_other(client, create_product, receivers, start_worker):
    slow = receivers(statuses=["stall"] * 4, stall=TIMEOUT + 2)
    fast = receivers()
    slow_hook, fast_hook = register(client, slow.url), register(client, fast.url)
    start_worker(WEBHOOK_WORKER_THREADS="3", WEBHOOK_PER_RECEIVER="1")
    ok(client.post(f"/api/webhooks/{fast_hook['id']}/test"), 202)
    wait_for(fast.delivered, what="the worker up")
    started = time.monotonic()
    products = [create_product() for _ in range(4)]
    wait_for(lambda: len(fast.delivered()) == 5, what="the fast receiver's 4 deliveries")
    assert time.monotonic() - started < 2 * TIMEOUT  # not behind the slow one's stalls (4 × 1.5 s)
    wait_for(lambda: len(deliveries(client, slow_hook["id"], status="delivered")) == 4, seconds=90,
             what="the slow receiver's deliveries, after the timeouts")
    assert any("timed out" in (d["last_error"] or "") for d in deliveries(client, slow_hook["id"])) or \
        any(d["attempts"] > 1 for d in deliveries(client, slow_hook["id"]))
    assert len(deliveries(client, fast_hook["id"], status="delivered")) == len(products) + 1


def test_one_products_events_arrive_in_order_while_others_pass(client, create_product, receivers, start_worker):
    refusals = Counter()

    def refuse_the_first_products_head_twice(body: bytes):
        row = json.loads(body)["data"]
        if row["product_id"] == first["id"] and row["seq"] == 1 and refusals["head"] < 2:
            refusals["head"] += 1
            return 500
        return 200

    receiver = receivers(decide=refuse_the_first_products_head_twice)
    webhook = register(client, receiver.url, ["stock.changed"])
    first, second = create_product(), create_product()
    ok(client.post("/api/stock/add", json={"product_id": first["id"], "quantity": 1}))
    for _ in range(3):
        ok(client.post("/api/stock/add", json={"product_id": first["id"], "quantity": 1}))
        ok(client.post("/api/stock/add", json={"product_id": second["id"], "quantity": 1}))
    start_worker(WEBHOOK_WORKER_THREADS="4", WEBHOOK_PER_RECEIVER="4")
    wait_for(lambda: len(receiver.delivered()) == 7, what="7 deliveries")
    arrived = [json.loads(r.body)["data"] for r in receiver.delivered()]
    for product in (first, second):
        seqs = [row["seq"] for row in arrived if row["product_id"] == product["id"]]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    # The first product's head failed twice; the second product's events did not wait for it.
    assert refusals["head"] == 2
    assert [row["product_id"] for row in arrived[:3]] == [second["id"]] * 3
    assert {d["status"] for d in deliveries(client, webhook["id"])} == {"delivered"}


def test_two_workers_never_send_one_delivery_at_the_same_time(client, create_product, receivers, start_worker):
    receiver = receivers(statuses=["stall"] * 6, stall=0.3)
    register(client, receiver.url)
    products = [create_product() for _ in range(20)]
    start_worker()
    start_worker()
    wait_for(lambda: len(receiver.delivered()) == len(products), what="every event delivered")
    time.sleep(1)
    sends = receiver.received()
    assert Counter(r.headers["X-Inventory-Delivery"] for r in sends).most_common(1)[0][1] == 1


def test_the_test_endpoint_sends_a_signed_ping(client, receivers, start_worker):
    receiver = receivers()
    webhook = register(client, receiver.url)
    queued = ok(client.post(f"/api/webhooks/{webhook['id']}/test"), 202)
    assert queued["event_type"] == "ping" and queued["status"] == "pending"
    start_worker()
    [ping] = wait_for(receiver.delivered, what="the ping")
    assert ping.headers["X-Inventory-Event"] == "ping"
    assert ping.headers["X-Inventory-Delivery"] == queued["uid"]
    assert docs_verify()(webhook["secret"], ping.headers, ping.body)
    assert json.loads(ping.body)["data"]["webhook_id"] == webhook["id"]
    seen = re.search(r"^inventory_webhook_worker_seen_seconds (\S+)$", client.get("/metrics").get_data(as_text=True), re.M)
    assert seen and 0 <= float(seen.group(1)) < 30  # the worker's heartbeat


def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(client, create_product, receivers,
                                                                         start_worker):
    receiver = receivers()
    webhook = register(client, receiver.url)
    rotated = ok(client.post(f"/api/webhooks/{webhook['id']}/rotate-secret", json={"grace_seconds": 3600}))
    assert rotated["secret"] != webhook["secret"] and rotated["previous_secret_until"]
    start_worker()
    create_product()
    [during] = wait_for(receiver.delivered, what="a delivery during the grace period")
    verify = docs_verify()
    assert verify(rotated["secret"], during.headers, during.body)
    assert verify(webhook["secret"], during.headers, during.body)
    assert len(during.headers["X-Inventory-Signature"].split(", ")) == 2
    ok(client.post(f"/api/webhooks/{webhook['id']}/rotate-secret", json={"grace_seconds": 0}))
    latest = ok(client.post(f"/api/webhooks/{webhook['id']}/rotate-secret", json={}))
    create_product()
    after = wait_for(lambda: len(receiver.delivered()) == 2 and receiver.delivered()[1], what="a second delivery")
    assert verify(latest["secret"], after.headers, after.body)
    assert not verify(rotated["secret"], after.headers, after.body)


def test_a_paused_webhook_gets_nothing_until_resumed(client, create_product, receivers, start_worker):
    receiver = receivers()
    webhook = register(client, receiver.url)
    ok(client.patch(f"/api/webhooks/{webhook['id']}", json={"is_active": False}))
    start_worker()
    create_product()
    time.sleep(1.5)
    assert receiver.received() == []
    ok(client.patch(f"/api/webhooks/{webhook['id']}", json={"is_active": True}))
    wait_for(receiver.delivered, what="the event after resuming")


@pytest.mark.parametrize("body", [
    {"url": "ftp://example.com/hook", "events": ["*"]},
    {"url": "http:///hook", "events": ["*"]},
    {"url": "http://user:pw@example.com/hook", "events": ["*"]},
    {"url": "http://example.com:99999/hook", "events": ["*"]},
    {"url": "http://example.com/hook", "events": []},
    {"url": "http://example.com/hook", "events": ["stock.moved"]},
    {"url": " http://example.com/hook", "events": ["*"]},
    {"url": "http://例子.com/hook", "events": ["*"]},
    {"url": "http://[::1]/hook", "events": ["*"]},
    {"url": "http://example.com/hook"},
    {"url": "http://example.com/hook", "events": ["*"], "secret": "mine"},
])
def test_a_bad_registration_is_a_400_and_registers_nothing(client, body):
    assert_error(client.post("/api/webhooks/", json=body), 400, "VALIDATION_ERROR")
    assert ok(client.get("/api/webhooks/"))["items"] == []


@pytest.mark.parametrize("body", [{}, {"url": None}, {"events": None}, {"is_active": None}, {"events": []}])
def test_a_bad_change_is_a_400_and_changes_nothing(client, body):
    webhook = register(client, "http://127.0.0.1:9/hook")
    assert_error(client.patch(f"/api/webhooks/{webhook['id']}", json=body), 400, "VALIDATION_ERROR")
    assert ok(client.get(f"/api/webhooks/{webhook['id']}"))["events"] == ["*"]


def test_every_type_with_star_is_star(client):
    webhook = register(client, "http://127.0.0.1:9/hook", ["stock.low", "*", "stock.low"])
    assert webhook["events"] == ["*"]
    changed = ok(client.patch(f"/api/webhooks/{webhook['id']}", json={"events": ["stock.low", "stock.low"]}))
    assert changed["events"] == ["stock.low"]


def test_unknown_webhooks_are_404(client):
    for method, path in [("GET", "/api/webhooks/9"), ("PATCH", "/api/webhooks/9"), ("DELETE", "/api/webhooks/9"),
                         ("GET", "/api/webhooks/9/deliveries"), ("POST", "/api/webhooks/9/test")]:
        assert_error(client.open(path, method=method, json={"is_active": False}), 404, "NOT_FOUND")


def test_block_private_refuses_loopback_and_private_receivers(app, client):
    app.config["WEBHOOK_BLOCK_PRIVATE"] = True
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/hook", "http://0x7f000001/"):
        assert_error(client.post("/api/webhooks/", json={"url": url, "events": ["*"]}), 400, "VALIDATION_ERROR")
    app.config["WEBHOOK_BLOCK_PRIVATE"] = False
    webhook = register(client, "http://127.0.0.1:9/hook")
    app.config["WEBHOOK_BLOCK_PRIVATE"] = True
    assert_error(client.patch(f"/api/webhooks/{webhook['id']}", json={"url": "http://192.168.0.9/"}),
                 400, "VALIDATION_ERROR")


def test_the_worker_refuses_a_private_address_at_send_time(client, create_product, receivers, start_worker):
    receiver = receivers()
    webhook = register(client, receiver.url)
    start_worker(WEBHOOK_BLOCK_PRIVATE="true")
    create_product()
    wait_for(lambda: deliveries(client, webhook["id"], status="failed"), what="refused to the end")
    assert receiver.received() == []
    assert "内网" in deliveries(client, webhook["id"])[0]["last_error"]


def test_metrics_show_the_backlog(client):
    webhook = register(client, "http://127.0.0.1:9/hook")
    ok(client.post(f"/api/webhooks/{webhook['id']}/test"), 202)
    scrape = client.get("/metrics").get_data(as_text=True)
    assert 'inventory_webhook_deliveries{status="pending"} 1.0' in scrape
    assert 'inventory_webhook_deliveries{status="failed"} 0.0' in scrape
    assert "inventory_webhook_oldest_pending_seconds" in scrape
