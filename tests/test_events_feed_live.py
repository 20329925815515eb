"""The feed under real concurrency: 16 threads write through gunicorn's workers while a
reader follows `/api/events/` by cursor; the reader sees every ledger row exactly once.

On MariaDB (TEST_DATABASE_URL) ids are taken at INSERT and transactions commit in
another order, so a reader keyed on ids would miss rows here; the feed's positions
are handed out in commit order (docs/events.md)."""
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

WRITERS = 16
WRITES_EACH = 60
PRODUCTS = 6
TIMEOUT = (5, 45)


class FeedReader(threading.Thread):
    """Follows the feed from 0 until told to finish, then reads until it is drained."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.events: list[dict] = []
        self.finish = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            session, after = requests.Session(), 0
            while True:
                finishing = self.finish.is_set()
                page = session.get(f"{self.url}/api/events/", params={"after": after, "limit": 50}, timeout=TIMEOUT)
                assert page.status_code == 200, page.text
                data = page.json()["data"]
                self.events += data["items"]
                after = data["next_after"]
                if finishing and not data["items"]:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def write_burst(url: str, product_ids: list[int], seed: int) -> None:
    session, rng = requests.Session(), random.Random(seed)
    for _ in range(WRITES_EACH):
        action = rng.choice(["add", "reduce"])
        response = session.post(f"{url}/api/stock/{action}", timeout=TIMEOUT,
                                json={"product_id": rng.choice(product_ids), "quantity": 1, "reason": "并发"})
        assert response.status_code == 200, response.text


@pytest.mark.workers(4)
def test_a_reader_following_the_feed_sees_every_ledger_row_exactly_once(live_server, db_url):
    url = live_server.url
    product_ids = []
    for index in range(PRODUCTS):
        response = requests.post(f"{url}/api/products/", timeout=TIMEOUT, json={
            "name": f"并发商品{index}", "sku": f"FEED-{index}", "price": 1, "initial_quantity": 10_000})
        assert response.status_code == 201, response.text
        product_ids.append(response.json()["data"]["id"])
    reader = FeedReader(url)
    reader.start()
    started = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        for future in [pool.submit(write_burst, url, product_ids, seed) for seed in range(WRITERS)]:
            future.result(timeout=300)
    reader.finish.set()
    reader.join(timeout=120)
    assert not reader.is_alive() and reader.error is None, reader.error

    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            ledger = [row.id for row in connection.execute(text("SELECT id FROM stock_logs ORDER BY id"))]
    finally:
        engine.dispose()
    changed = [event for event in reader.events if event["type"] == "stock.changed"]
    seen = [event["data"]["id"] for event in changed]
    assert len(ledger) == PRODUCTS + WRITERS * WRITES_EACH
    assert sorted(seen) == ledger  # each ledger row once: none skipped, none twice
    positions = [event["position"] for event in reader.events]
    assert positions == list(range(1, len(positions) + 1))
    for product_id in product_ids:  # one product's events in its ledger order
        sequence = [event["data"]["seq"] for event in changed if event["product_id"] == product_id]
        assert sequence == sorted(sequence)
    # How often an event came after one with a larger id: each would be lost to an id cursor.
    overtaken = sum(1 for index, event in enumerate(reader.events)
                    if index and event["id"] < max(e["id"] for e in reader.events[:index]))
    print(f"{len(seen)} ledger rows in {time.monotonic() - started:.1f} s; {overtaken} arrived after a larger id")
