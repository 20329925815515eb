"""Reservations (SPEC §9): holds on a level's available units, their fulfilment, release,
extension and lapse, and what every stock read and write makes of them."""
import time

import pytest
from sqlalchemy import text

from db import db
from tests.helpers import MISSING_ID, assert_error, ok
from tests.test_warehouses import default_id, move, new_warehouse, verify


def reserve(client, product_id: int, quantity: int, **fields):
    return client.post("/api/reservations/", json={"product_id": product_id, "quantity": quantity, **fields})


def held(client, product_id: int) -> tuple[int, int, int]:
    """(quantity, reserved, available) of the product's total."""
    stock = ok(client.get(f"/api/stock/product/{product_id}"))
    return stock["quantity"], stock["reserved"], stock["available"]


def act(client, reservation_id: int, action: str, **body):
    return client.post(f"/api/reservations/{reservation_id}/{action}", json=body)


def test_a_reservation_holds_units_and_every_stock_read_shows_them(client, create_product):
    product = create_product(initial_quantity=10)
    reservation = ok(reserve(client, product["id"], 4, reference="订单-001", expires_in=600), 201)
    assert reservation["status"] == "active" and reservation["quantity"] == 4
    assert reservation["reference"] == "订单-001" and reservation["warehouse_id"] == default_id(client)
    assert held(client, product["id"]) == (10, 4, 6)
    (level,) = ok(client.get(f"/api/stock/product/{product['id']}"))["levels"]
    assert (level["quantity"], level["reserved"], level["available"]) == (10, 4, 6)
    assert ok(client.get(f"/api/products/{product['id']}"))["stock"]["available"] == 6
    (row,) = ok(client.get("/api/stock/"))["items"]
    assert (row["reserved"], row["available"]) == (4, 6)
    (row,) = ok(client.get(f"/api/warehouses/{default_id(client)}/stock"))["items"]
    assert (row["reserved"], row["available"]) == (4, 6)
    assert ok(client.get(f"/api/reservations/{reservation['id']}")) == reservation
    assert verify(client)["problems"] == []


def test_more_than_available_is_refused_and_changes_nothing(client, create_product):
    product = create_product(initial_quantity=5)
    ok(reserve(client, product["id"], 3), 201)
    details = assert_error(reserve(client, product["id"], 3), 409, "INSUFFICIENT_STOCK")
    assert (details["available"], details["requested"]) == (2, 3)
    details = assert_error(client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 3}),
                           409, "INSUFFICIENT_STOCK")
    assert details["available"] == 2
    assert held(client, product["id"]) == (5, 3, 2)
    assert ok(client.get("/api/reservations/"))["pagination"]["total"] == 1


def test_a_transfer_takes_only_what_is_available(client, create_product):
    product = create_product(initial_quantity=5)
    other = new_warehouse(client, "SH-01")
    ok(reserve(client, product["id"], 4), 201)
    details = assert_error(client.post("/api/stock/transfer", json={
        "product_id": product["id"], "from_warehouse_id": default_id(client), "to_warehouse_id": other["id"],
        "quantity": 2}), 409, "INSUFFICIENT_STOCK")
    assert details["available"] == 1
    move(client, "transfer", product_id=product["id"], from_warehouse_id=default_id(client),
         to_warehouse_id=other["id"], quantity=1)


def test_an_adjust_below_what_is_reserved_is_accepted_and_available_goes_negative(client, create_product):
    product = create_product(initial_quantity=5)
    ok(reserve(client, product["id"], 4), 201)
    move(client, "adjust", product_id=product["id"], quantity=1)
    assert held(client, product["id"]) == (1, 4, -3)
    assert verify(client)["problems"] == []


def test_fulfil_writes_an_out_row_carrying_the_reservation(client, create_product):
    product = create_product(initial_quantity=10)
    reservation = ok(reserve(client, product["id"], 4), 201)
    part = ok(act(client, reservation["id"], "fulfil", quantity=1, reason="订单发货"))
    assert part["reservation"]["status"] == "active" and part["reservation"]["quantity"] == 3
    assert part["log"]["action"] == "out" and part["log"]["quantity"] == 1
    assert part["log"]["reservation_id"] == reservation["id"]
    assert (part["stock"]["quantity"], part["stock"]["reserved"]) == (9, 3)
    rest = ok(client.post(f"/api/reservations/{reservation['id']}/fulfil"))  # no body: all it holds
    assert rest["reservation"]["status"] == "fulfilled" and rest["reservation"]["fulfilled_quantity"] == 4
    assert rest["log"]["quantity"] == 3
    assert held(client, product["id"]) == (6, 0, 6)
    log = ok(client.get(f"/api/logs/{rest['log']['id']}"))
    assert log["reservation_id"] == reservation["id"]
    assert verify(client)["problems"] == []


def test_fulfilling_more_than_held_is_a_conflict(client, create_product):
    product = create_product(initial_quantity=10)
    reservation = ok(reserve(client, product["id"], 2), 201)
    details = assert_error(act(client, reservation["id"], "fulfil", quantity=3), 409, "CONFLICT")
    assert details["reserved"] == 2
    assert held(client, product["id"]) == (10, 2, 8)


def test_release_gives_the_units_back(client, create_product):
    product = create_product(initial_quantity=10)
    reservation = ok(reserve(client, product["id"], 7), 201)
    released = ok(act(client, reservation["id"], "release"))
    assert released["status"] == "released"
    assert held(client, product["id"]) == (10, 0, 10)


def test_deleting_a_product_releases_its_holds(client, create_product):
    product = create_product(initial_quantity=10)
    reservations = [ok(reserve(client, product["id"], quantity), 201)["id"] for quantity in (3, 2)]
    ok(client.delete(f"/api/products/{product['id']}"))
    assert [ok(client.get(f"/api/reservations/{id_}"))["status"] for id_ in reservations] == ["released"] * 2
    events = ok(client.get("/api/events/?after=0&limit=500"))["items"]
    assert [e["type"] for e in events][-3:] == ["reservation.released", "reservation.released", "product.deleted"]
    assert verify(client)["problems"] == []


@pytest.mark.parametrize("ending", ["release", "fulfil"])
def test_an_ended_reservation_refuses_every_action_with_its_status(client, create_product, ending):
    product = create_product(initial_quantity=10)
    reservation = ok(reserve(client, product["id"], 2), 201)
    ok(act(client, reservation["id"], ending))
    status = {"release": "released", "fulfil": "fulfilled"}[ending]
    for action, body in (("fulfil", {}), ("release", {}), ("extend", {"expires_in": 60})):
        details = assert_error(act(client, reservation["id"], action, **body), 409, "CONFLICT")
        assert details["status"] == status
    assert held(client, product["id"])[1] == 0


def test_a_reservation_past_its_time_holds_nothing_at_once(client, create_product):
    product = create_product(initial_quantity=3)
    reservation = ok(reserve(client, product["id"], 3, expires_in=1), 201)
    assert_error(reserve(client, product["id"], 1), 409, "INSUFFICIENT_STOCK")
    time.sleep(1.1)
    # No job has run: the reads leave it out, and the next write takes its units.
    assert held(client, product["id"]) == (3, 0, 3)
    assert ok(client.get(f"/api/reservations/{reservation['id']}"))["status"] == "expired"
    assert [r["id"] for r in ok(client.get("/api/reservations/?status=expired"))["items"]] == [reservation["id"]]
    assert ok(client.get("/api/reservations/?status=active"))["items"] == []
    details = assert_error(act(client, reservation["id"], "extend", expires_in=60), 409, "CONFLICT")
    assert details["status"] == "expired"
    ok(reserve(client, product["id"], 3), 201)
    assert verify(client)["problems"] == []


def test_the_expire_command_marks_past_holds_in_bulk(client, create_product, runner):
    products = [create_product(sku=f"EXP-{i}", initial_quantity=5) for i in range(3)]
    for product in products:
        ok(reserve(client, product["id"], 2, expires_in=1), 201)
    kept = ok(reserve(client, products[0]["id"], 1, expires_in=600), 201)
    time.sleep(1.1)
    result = runner.invoke(args=["reservations", "expire"])
    assert result.exit_code == 0, result.output
    assert "expired 3 reservations" in result.output
    assert ok(client.get("/api/reservations/?status=expired"))["pagination"]["total"] == 3
    assert ok(client.get(f"/api/reservations/{kept['id']}"))["status"] == "active"
    assert held(client, products[0]["id"]) == (5, 1, 4)
    assert verify(client)["problems"] == []


def test_extend_moves_the_end(client, create_product):
    product = create_product(initial_quantity=3)
    reservation = ok(reserve(client, product["id"], 3, expires_in=1), 201)
    extended = ok(act(client, reservation["id"], "extend", expires_in=600))
    assert extended["expires_at"] > reservation["expires_at"]
    time.sleep(1.1)
    assert held(client, product["id"]) == (3, 3, 0)


def test_a_batch_reserves_an_orders_lines_all_or_none(client, create_product):
    first, second = create_product(sku="ORD-1", initial_quantity=5), create_product(sku="ORD-2", initial_quantity=1)
    lines = [{"action": "reserve", "product_id": first["id"], "quantity": 2, "reference": "订单-9"},
             {"action": "reserve", "product_id": second["id"], "quantity": 2, "reference": "订单-9"}]
    details = assert_error(client.post("/api/stock/batch", json={"changes": lines}), 409, "INSUFFICIENT_STOCK")
    assert (details["index"], details["available"]) == (1, 1)
    assert held(client, first["id"]) == (5, 0, 5)
    lines[1]["quantity"] = 1
    dry = ok(client.post("/api/stock/batch", json={"changes": lines, "dry_run": True}))
    assert [r["reservation"]["id"] for r in dry["results"]] == [None, None]
    assert held(client, first["id"]) == (5, 0, 5)
    results = ok(client.post("/api/stock/batch", json={"changes": lines}))["results"]
    assert [r["reservation"]["quantity"] for r in results] == [2, 1]
    assert [r["log"] for r in results] == [None, None]
    assert ok(client.get("/api/reservations/?reference=订单-9"))["pagination"]["total"] == 2
    assert held(client, second["id"]) == (1, 1, 0)


def test_idempotency_key_replays_a_reservation(client, create_product):
    product = create_product(initial_quantity=5)
    headers = {"Idempotency-Key": "order-77-line-1"}
    body = {"product_id": product["id"], "quantity": 2}
    first = client.post("/api/reservations/", json=body, headers=headers)
    again = client.post("/api/reservations/", json=body, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == first.get_json()
    assert held(client, product["id"]) == (5, 2, 3)
    reservation_id = first.get_json()["data"]["id"]
    fulfil_headers = {"Idempotency-Key": "ship-77"}
    shipped = client.post(f"/api/reservations/{reservation_id}/fulfil", json={}, headers=fulfil_headers)
    replay = client.post(f"/api/reservations/{reservation_id}/fulfil", json={}, headers=fulfil_headers)
    assert replay.status_code == shipped.status_code == 200 and replay.get_json() == shipped.get_json()
    assert held(client, product["id"]) == (3, 0, 3)


def test_filters_and_bad_input(client, create_product):
    product = create_product(initial_quantity=5)
    other = new_warehouse(client, "BJ-01")
    move(client, "add", product_id=product["id"], quantity=5, warehouse_id=other["id"])
    here = ok(reserve(client, product["id"], 1, warehouse_id=other["id"]), 201)
    ok(reserve(client, product["id"], 1), 201)
    items = ok(client.get(f"/api/reservations/?warehouse_id={other['id']}"))["items"]
    assert [item["id"] for item in items] == [here["id"]]
    assert ok(client.get(f"/api/reservations/?product_id={product['id']}&per_page=1"))["pagination"]["pages"] == 2
    assert_error(client.get("/api/reservations/?status=gone"), 400, "VALIDATION_ERROR")
    for body in ({"product_id": product["id"], "quantity": 0}, {"product_id": product["id"], "quantity": 1.5},
                 {"product_id": product["id"], "quantity": 1, "expires_in": 0},
                 {"product_id": product["id"], "quantity": 1, "expires_in": 2_592_001},
                 {"product_id": product["id"], "quantity": 1, "reference": "x" * 129}):
        assert_error(client.post("/api/reservations/", json=body), 400, "VALIDATION_ERROR")
    assert_error(reserve(client, MISSING_ID, 1), 404, "NOT_FOUND")
    assert_error(reserve(client, product["id"], 1, warehouse_id=MISSING_ID), 404, "NOT_FOUND")
    assert_error(client.get(f"/api/reservations/{MISSING_ID}"), 404, "NOT_FOUND")
    assert_error(act(client, MISSING_ID, "release"), 404, "NOT_FOUND")
    assert_error(act(client, here["id"], "extend"), 400, "VALIDATION_ERROR")
    assert held(client, product["id"]) == (10, 2, 8)


def test_verify_finds_reserved_that_no_hold_explains(app, client, create_product):
    product = create_product(initial_quantity=5)
    ok(reserve(client, product["id"], 2), 201)
    with app.app_context():
        db.session.execute(text("UPDATE stock_levels SET reserved = 3"))
        db.session.commit()
    problems = verify(client)["problems"]
    assert problems and "预留" in problems[0]["problem"]


def test_every_transition_is_an_event_in_the_feed(client, create_product):
    product = create_product(initial_quantity=10)
    shipped = ok(reserve(client, product["id"], 3, reference="订单-E"), 201)
    given_back = ok(reserve(client, product["id"], 2), 201)
    lapsed = ok(reserve(client, product["id"], 1, expires_in=1), 201)
    ok(act(client, shipped["id"], "fulfil", quantity=1))
    ok(act(client, given_back["id"], "release"))
    time.sleep(1.1)
    ok(reserve(client, product["id"], 1), 201)  # the next write of the product marks the lapsed one
    feed = ok(client.get("/api/events/", query_string={"after": 0, "limit": 500}))["items"]
    held = [(event["type"], event["data"]["id"]) for event in feed if event["type"].startswith("reservation.")]
    assert held[:5] == [("reservation.created", shipped["id"]), ("reservation.created", given_back["id"]),
                        ("reservation.created", lapsed["id"]), ("reservation.fulfilled", shipped["id"]),
                        ("reservation.released", given_back["id"])]
    assert ("reservation.expired", lapsed["id"]) in held[5:]
    fulfilled = next(e for e in feed if e["type"] == "reservation.fulfilled")
    assert fulfilled["data"]["quantity"] == 2 and fulfilled["data"]["reference"] == "订单-E"
    assert fulfilled["product_id"] == product["id"] and fulfilled["warehouse_id"] == default_id(client)
    out = next(e for e in feed if e["type"] == "stock.changed" and e["data"]["action"] == "out")
    assert out["data"]["reservation_id"] == shipped["id"]
