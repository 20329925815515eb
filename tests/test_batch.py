"""`POST /api/stock/batch` (SPEC §6): all changes in one transaction, or none."""
from itertools import pairwise

import pytest

MAX_BATCH = 100


def run_batch(client, changes: list[dict], **extra):
    return client.post("/api/stock/batch", json={"changes": changes, **extra})


def change(action: str, product_id: int, quantity: int, **fields) -> dict:
    return {"action": action, "product_id": product_id, "quantity": quantity, **fields}


def state(client, product_ids) -> dict[int, tuple[int, int]]:
    """{product_id: (quantity, log count)} as read back through the API."""
    result = {}
    for product_id in product_ids:
        quantity = client.get(f"/api/stock/product/{product_id}").get_json()["data"]["quantity"]
        logs = client.get(f"/api/logs/product/{product_id}").get_json()["data"]["pagination"]["total"]
        result[product_id] = (quantity, logs)
    return result


def total_logs(client) -> int:
    return client.get("/api/logs/").get_json()["data"]["pagination"]["total"]


@pytest.fixture
def products(create_product):
    """Three products holding 10, 20 and 30 units."""
    return [create_product(initial_quantity=quantity)["id"] for quantity in (10, 20, 30)]


def test_batch_applies_every_change_and_answers_results_in_order(client, products):
    a, b, c = products
    response = run_batch(
        client, [change("reduce", c, 5), change("add", a, 1, reason="批量入库"), change("adjust", b, 7)]
    )

    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["dry_run"] is False
    results = data["results"]
    assert [r["stock"]["product_id"] for r in results] == [c, a, b]
    assert [r["log"]["action"] for r in results] == ["out", "in", "adjust"]
    assert [r["stock"]["quantity"] for r in results] == [25, 11, 7]
    assert [r["log"]["quantity"] for r in results] == [5, 1, -13]
    assert results[1]["log"]["reason"] == "批量入库"
    assert all(isinstance(r["log"]["id"], int) for r in results)
    assert state(client, products) == {a: (11, 2), b: (7, 2), c: (25, 2)}


def test_same_product_several_times_chains_within_the_batch(client, products):
    a, b, _ = products
    response = run_batch(
        client,
        [change("add", a, 5), change("reduce", b, 1), change("reduce", a, 12), change("adjust", a, 40), change("add", a, 2)],
    )

    assert response.status_code == 200, response.get_json()
    logs = [r["log"] for r in response.get_json()["data"]["results"] if r["stock"]["product_id"] == a]
    assert [(log["before_quantity"], log["after_quantity"]) for log in logs] == [(10, 15), (15, 3), (3, 40), (40, 42)]
    assert [log["seq"] for log in logs] == [2, 3, 4, 5]
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in pairwise(logs))
    assert state(client, [a, b]) == {a: (42, 5), b: (19, 2)}


def test_later_change_may_use_units_an_earlier_change_of_the_batch_added(client, products):
    a = products[0]
    response = run_batch(client, [change("add", a, 5), change("reduce", a, 15)])
    assert response.status_code == 200
    assert state(client, [a]) == {a: (0, 3)}


def test_adjust_to_the_current_count_in_a_batch_logs_nothing(client, products):
    a, b, _ = products
    response = run_batch(client, [change("adjust", a, 10), change("add", b, 1)])
    assert response.status_code == 200
    assert [r["log"] is None for r in response.get_json()["data"]["results"]] == [True, False]
    assert state(client, [a, b]) == {a: (10, 1), b: (21, 2)}


FAILURES = {
    "insufficient-stock": (lambda ids: change("reduce", ids[1], 21), 409, "INSUFFICIENT_STOCK"),
    "insufficient-on-product-changed-in-batch": (lambda ids: change("reduce", ids[0], 12), 409, "INSUFFICIENT_STOCK"),
    "cas-mismatch": (lambda ids: change("add", ids[2], 1, expected_quantity=29), 409, "CONFLICT"),
    "unknown-product": (lambda ids: change("add", max(ids) + 1000, 1), 404, "NOT_FOUND"),
}


@pytest.mark.parametrize("position", [0, 2])
@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
def test_one_failing_change_fails_the_batch_with_its_index_and_applies_nothing(client, products, failure, position):
    failing, status, code = failure
    a, b, c = products
    changes = [change("add", a, 1), change("reduce", b, 2), change("adjust", c, 1)]
    changes.insert(position, failing(products))
    before, logs_before = state(client, products), total_logs(client)

    response = run_batch(client, changes)

    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["details"]["index"] == position
    assert state(client, products) == before
    assert total_logs(client) == logs_before


def test_cas_mismatch_reports_the_current_quantity_of_that_change(client, products):
    b = products[1]
    response = run_batch(client, [change("add", b, 5), change("reduce", b, 1, expected_quantity=20)])
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == (409, "CONFLICT")
    assert error["details"]["index"] == 1
    assert error["details"]["current_quantity"] == 25
    assert state(client, [b]) == {b: (20, 1)}


def test_expected_quantity_is_checked_against_the_level_inside_the_batch(client, products):
    a = products[0]
    response = run_batch(client, [change("add", a, 5), change("reduce", a, 1, expected_quantity=15)])
    assert response.status_code == 200
    assert state(client, [a]) == {a: (14, 3)}


def _many(ids, count):
    return [change("add", ids[i % len(ids)], 1) for i in range(count)]


@pytest.mark.parametrize(
    "body",
    [
        lambda ids: {"changes": _many(ids, MAX_BATCH + 1)},
        lambda ids: {"changes": []},
        lambda ids: {},
        lambda ids: {"changes": [change("move", ids[0], 1)]},
        lambda ids: {"changes": [{"product_id": ids[0], "quantity": 1}]},
        lambda ids: {"changes": [change("add", ids[0], 0)]},
        lambda ids: {"changes": [change("add", ids[0], 1.5)]},
        lambda ids: {"changes": [change("add", ids[0], 1, colour="red")]},
        lambda ids: {"changes": [change("add", ids[0], 1)], "dry_run": "yes"},
        lambda ids: {"changes": change("add", ids[0], 1)},
    ],
    ids=[
        "over-100", "empty", "missing-changes", "bad-action", "no-action", "zero-quantity",
        "fractional-quantity", "unknown-field", "dry-run-not-boolean", "changes-not-a-list",
    ],
)
def test_malformed_batch_is_400_and_changes_nothing(client, products, body):
    before = state(client, products)
    response = client.post("/api/stock/batch", json=body(products))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"
    assert state(client, products) == before


def test_batch_of_exactly_100_changes_is_accepted(client, products):
    response = run_batch(client, _many(products, MAX_BATCH))
    assert response.status_code == 200
    assert len(response.get_json()["data"]["results"]) == MAX_BATCH
    assert sum(logs for _, logs in state(client, products).values()) == MAX_BATCH + 3


def test_dry_run_answers_the_outcome_but_commits_nothing(client, create_product):
    low = create_product(initial_quantity=10, min_quantity=5)["id"]
    other = create_product(initial_quantity=3)["id"]
    before, logs_before = state(client, [low, other]), total_logs(client)

    response = run_batch(
        client, [change("reduce", low, 6), change("add", other, 4), change("add", low, 1)], dry_run=True
    )

    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["dry_run"] is True
    results = data["results"]
    assert [(r["stock"]["quantity"], r["stock"]["is_low"]) for r in results] == [(4, True), (7, False), (5, True)]
    assert [r["log"]["id"] for r in results] == [None, None, None]
    assert [r["log"]["after_quantity"] for r in results] == [4, 7, 5]
    assert state(client, [low, other]) == before
    assert total_logs(client) == logs_before


def test_dry_run_reports_the_error_a_real_run_would_meet(client, products):
    before = state(client, products)
    response = run_batch(client, [change("add", products[0], 1), change("reduce", products[1], 99)], dry_run=True)
    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["index"] == 1
    assert state(client, products) == before


def test_dry_run_with_an_idempotency_key_commits_nothing(client, products):
    before = state(client, products)
    body = {"changes": [change("add", products[0], 5)], "dry_run": True}
    first = client.post("/api/stock/batch", json=body, headers={"Idempotency-Key": "dry"})
    assert first.status_code == 200
    assert first.get_json()["data"]["results"][0]["stock"]["quantity"] == 15
    assert state(client, products) == before


def test_after_a_dry_run_the_real_run_gets_the_next_sequence_numbers(client, products):
    a = products[0]
    run_batch(client, [change("add", a, 1)], dry_run=True)
    real = run_batch(client, [change("add", a, 1)])
    log = real.get_json()["data"]["results"][0]["log"]
    assert (log["seq"], log["after_quantity"]) == (2, 11)
    assert client.get("/api/logs/verify").get_json()["data"]["problems"] == []
