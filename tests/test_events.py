"""SPEC §10's feed: an event per change in the change's own transaction, read by cursor."""
import pytest

from db import db
from models import Event
from services import event_service
from tests.helpers import assert_error, ok


def feed(client, after=0, limit=100):
    return ok(client.get(f"/api/events/?after={after}&limit={limit}"))


def all_events(client) -> list[dict]:
    events, after = [], 0
    while True:
        page = feed(client, after, 7)
        events += page["items"]
        if not page["items"]:
            return events
        after = page["next_after"]


def test_every_change_has_its_event_in_order(client, create_product):
    product = create_product(initial_quantity=5, min_quantity=3)
    ok(client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 3}))
    ok(client.put(f"/api/products/{product['id']}", json={"price": 5}))
    ok(client.delete(f"/api/products/{product['id']}"))
    events = all_events(client)
    assert [event["type"] for event in events] == [
        "product.created", "stock.changed", "stock.changed", "stock.low", "product.updated", "product.deleted"]
    assert [event["position"] for event in events] == list(range(1, 7))
    logs = ok(client.get(f"/api/logs/product/{product['id']}"))["items"]
    changed = [e["data"] for e in events if e["type"] == "stock.changed"]
    assert changed == list(reversed(logs))
    assert [list(row) for row in changed] == [list(row) for row in reversed(logs)]  # the same keys, in order
    assert all(event["product_id"] == product["id"] for event in events)
    # A movement names the warehouse whose level moved (the default one here); the others none.
    default = ok(client.get("/api/warehouses/"))["items"][0]["id"]
    assert [event["warehouse_id"] for event in events] == [
        default if event["type"] == "stock.changed" else None for event in events]
    assert events[3]["data"]["quantity"] == 2 and events[3]["data"]["min_quantity"] == 3
    assert events[4]["data"]["price"] == 5


def test_a_refused_change_leaves_no_event(client, create_product):
    product = create_product(initial_quantity=1)
    before = len(all_events(client))
    assert_error(client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 2}),
                 409, "INSUFFICIENT_STOCK")
    batch = {"changes": [{"action": "add", "product_id": product["id"], "quantity": 1},
                         {"action": "reduce", "product_id": product["id"], "quantity": 99}]}
    assert_error(client.post("/api/stock/batch", json=batch), 409, "INSUFFICIENT_STOCK")
    ok(client.post("/api/stock/batch", json={**batch, "changes": batch["changes"][:1], "dry_run": True}))
    assert len(all_events(client)) == before


def test_staying_low_is_not_announced_again(client, create_product):
    product = create_product(initial_quantity=10, min_quantity=5)
    for _ in range(3):
        ok(client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 2}))
    assert [e["type"] for e in all_events(client)].count("stock.low") == 1
    ok(client.post("/api/stock/adjust", json={"product_id": product["id"], "quantity": 100}))
    ok(client.post("/api/stock/adjust", json={"product_id": product["id"], "quantity": 100, "min_quantity": 200}))
    assert [e["type"] for e in all_events(client)].count("stock.low") == 2


def test_a_level_below_its_own_minimum_is_announced_with_its_warehouse(client, create_product):
    product = create_product(initial_quantity=10)
    shanghai = ok(client.post("/api/warehouses/", json={"code": "SH", "name": "上海仓"}), 201)["id"]
    ok(client.post("/api/stock/transfer", json={"product_id": product["id"], "from_warehouse_id":
                                                ok(client.get("/api/warehouses/"))["items"][0]["id"],
                                                "to_warehouse_id": shanghai, "quantity": 6}))
    ok(client.post("/api/stock/adjust", json={"product_id": product["id"], "warehouse_id": shanghai,
                                              "quantity": 6, "min_quantity": 4}))
    for _ in range(2):  # 6 → 4 → 2: low at 4, and not again while it stays low
        ok(client.post("/api/stock/reduce", json={"product_id": product["id"], "warehouse_id": shanghai,
                                                  "quantity": 2}))
    ok(client.post("/api/stock/adjust", json={"product_id": product["id"], "warehouse_id": shanghai,
                                              "quantity": 2, "min_quantity": 1}))  # no longer low
    ok(client.post("/api/stock/adjust", json={"product_id": product["id"], "warehouse_id": shanghai,
                                              "quantity": 2, "min_quantity": 3}))  # low by its new minimum
    low = [e for e in all_events(client) if e["type"] == "stock.low"]
    assert [(e["warehouse_id"], e["data"]["warehouse_id"], e["data"]["quantity"], e["data"]["min_quantity"])
            for e in low] == [(shanghai, shanghai, 4, 4), (shanghai, shanghai, 2, 3)]


def test_the_cursor_resumes_and_an_empty_page_keeps_it(client, create_product):
    create_product(initial_quantity=1)
    first = feed(client, 0, 1)
    assert len(first["items"]) == 1 and first["next_after"] == first["items"][0]["position"]
    rest = feed(client, first["next_after"])
    assert [e["position"] for e in rest["items"]] == [2]
    assert feed(client, rest["next_after"]) == {"items": [], "next_after": rest["next_after"]}


def test_a_cursor_beyond_the_feed_is_refused_with_where_the_feed_ends(client, create_product):
    create_product(initial_quantity=1)  # positions 1 and 2
    details = assert_error(client.get("/api/events/?after=999"), 400, "VALIDATION_ERROR")
    assert details == {"after": 999, "last_position": 2}


@pytest.mark.parametrize("query", ["after=-1", "after=x", "limit=0", "limit=501", "after=99999999999999999999"])
def test_bad_cursor_or_limit_is_a_400(client, query):
    assert_error(client.get(f"/api/events/?{query}"), 400, "VALIDATION_ERROR")


def test_an_event_committed_late_with_a_smaller_id_is_not_skipped(app, client, create_product):
    """The race the positions exist for, made by hand: the reader passes id 100 before
    an event with id 50 (taken earlier, by a transaction that took longer) commits. It
    is handed out after, at the next position."""
    product = create_product()
    first = feed(client)["items"][0]["id"]
    with app.app_context():
        db.session.add(Event(id=first + 100, type="stock.changed", product_id=product["id"], data="{}"))
        db.session.commit()
    seen = feed(client)
    assert [(e["id"], e["position"]) for e in seen["items"]] == [(first, 1), (first + 100, 2)]
    with app.app_context():
        db.session.add(Event(id=first + 50, type="stock.changed", product_id=product["id"], data="{}"))
        db.session.commit()
    assert [(e["id"], e["position"]) for e in feed(client, seen["next_after"])["items"]] == [(first + 50, 3)]


def test_the_sequencer_row_is_made_on_first_use_after_the_last_position(app, client, create_product):
    create_product()
    feed(client)
    with app.app_context():
        db.session.execute(db.text("DELETE FROM event_sequencer"))
        db.session.commit()
    create_product()
    assert [e["position"] for e in feed(client)["items"]] == [1, 2]
    with app.app_context():
        assert event_service.last_position() == 2
