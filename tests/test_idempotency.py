"""`Idempotency-Key` (SPEC §6): a retry replays the first answer and changes nothing again."""
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, text

from db import db
from models.types import UTCDateTime
from routes.idempotency import canonical_body

KEY_HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
STOCK_ENDPOINTS = ("add", "reduce", "adjust", "batch")


def change_body(endpoint: str, product_id: int, quantity: int = 3) -> dict:
    """A valid request to a stock endpoint that changes the count of `product_id`."""
    if endpoint == "batch":
        return {"changes": [{"action": "add", "product_id": product_id, "quantity": quantity}]}
    if endpoint == "adjust":
        return {"product_id": product_id, "quantity": 1000 + quantity}
    return {"product_id": product_id, "quantity": quantity, "reason": "补货"}


def send(client, path: str, body, key: str | None = None):
    """POST `body` (a dict as JSON, or raw JSON text) with an optional Idempotency-Key."""
    headers = {} if key is None else {KEY_HEADER: key}
    if isinstance(body, str):
        return client.post(path, data=body, content_type="application/json", headers=headers)
    return client.post(path, json=body, headers=headers)


def stock_path(endpoint: str) -> str:
    return f"/api/stock/{endpoint}"


def state(client, product_id: int) -> tuple[int, int]:
    """(current quantity, number of log rows) of a product."""
    quantity = client.get(f"/api/stock/product/{product_id}").get_json()["data"]["quantity"]
    logs = client.get(f"/api/logs/product/{product_id}").get_json()["data"]["pagination"]["total"]
    return quantity, logs


def product_count(client) -> int:
    return client.get("/api/products/").get_json()["data"]["pagination"]["total"]


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


def assert_replay_of(first, again) -> None:
    assert again.status_code == first.status_code
    assert again.get_data() == first.get_data()
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.headers.get(REPLAYED) == "true"


def age_idempotency_keys(app, hours: float) -> None:
    """Move every stored key's created_at `hours` into the past (raw SQL)."""
    moment = datetime.now(UTC) - timedelta(hours=hours)
    statement = text("UPDATE idempotency_keys SET created_at = :moment").bindparams(
        bindparam("moment", type_=UTCDateTime())
    )
    with app.app_context():
        db.session.execute(statement, {"moment": moment})
        db.session.commit()


def stored_key_count(app) -> int:
    with app.app_context():
        return db.session.execute(text("SELECT COUNT(*) FROM idempotency_keys")).scalar_one()


# ---- replay ----

@pytest.mark.parametrize("endpoint", STOCK_ENDPOINTS)
def test_retry_of_stock_change_replays_first_response_without_changing_again(client, create_product, endpoint):
    product_id = create_product(initial_quantity=50)["id"]
    before = state(client, product_id)
    body = change_body(endpoint, product_id)

    first = send(client, stock_path(endpoint), body, key=f"retry-{endpoint}")
    assert first.status_code == 200, first.get_json()
    assert REPLAYED not in first.headers
    after_first = state(client, product_id)
    assert after_first != before

    again = send(client, stock_path(endpoint), body, key=f"retry-{endpoint}")
    assert_replay_of(first, again)
    assert state(client, product_id) == after_first


def test_retry_of_product_create_replays_201_with_location_and_etag(client):
    body = {"name": "幂等商品", "sku": "IDEM-1", "price": 9.5, "initial_quantity": 4}
    first = send(client, "/api/products/", body, key="create-1")
    assert first.status_code == 201
    again = send(client, "/api/products/", body, key="create-1")

    assert_replay_of(first, again)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert product_count(client) == 1
    assert state(client, first.get_json()["data"]["id"]) == (4, 1)


SAME_REQUEST_SPELLINGS = {
    "reordered-and-spaced": '{{ "reason" : "入库",\n  "quantity": 2,   "product_id": {pid} }}',
    "unicode-escaped": '{{"product_id":{pid},"quantity":2,"reason":"\\u5165\\u5e93"}}',
    "trailing-whitespace": '{{"product_id": {pid}, "quantity": 2, "reason": "入库"}}\n\n',
    "integer-as-2.0": '{{"product_id": {pid}, "quantity": 2.0, "reason": "入库"}}',
    "integer-as-0.2e1": '{{"product_id": {pid}, "quantity": 0.2e1, "reason": "入库"}}',
}


@pytest.mark.parametrize("spelling", SAME_REQUEST_SPELLINGS.values(), ids=SAME_REQUEST_SPELLINGS.keys())
def test_json_key_order_and_spacing_still_count_as_the_same_request(client, create_product, spelling):
    product_id = create_product(initial_quantity=10)["id"]
    compact = json.dumps({"product_id": product_id, "quantity": 2, "reason": "入库"}, ensure_ascii=False)

    first = send(client, "/api/stock/add", compact, key="same-json")
    again = send(client, "/api/stock/add", spelling.format(pid=product_id), key="same-json")

    assert_replay_of(first, again)
    assert state(client, product_id) == (12, 2)


@pytest.mark.parametrize("document", [
    {"product_id": 7, "quantity": 2, "reason": "入库 ✓", "operator": None},
    {"name": "测试商品", "sku": "TEST-001", "price": 99.99, "min_quantity": 10, "initial_quantity": 100},
    {"changes": [{"action": "add", "product_id": 1, "quantity": 20}, {"action": "reduce", "product_id": 2,
                 "quantity": 3, "expected_quantity": 10}], "dry_run": False},
    {"price": 0.1, "big": 12345678901234567890, "small": 1e-7, "negative": -3.5, "list": [1, 2.5, "三"]},
], ids=["stock-change", "product", "batch", "numbers"])
def test_keys_stored_before_numbers_were_written_exactly_still_replay(document):
    """Bodies clients send canonicalise to the text the fingerprint was made of before
    (floats and ints as Python writes them), so an upgrade does not turn a retry into a 422."""
    raw = json.dumps(document, ensure_ascii=False)
    earlier = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_body(raw.encode()) == earlier.encode()


def test_numbers_that_differ_past_a_floats_precision_are_different_requests(client):
    first = send(client, "/api/products/", '{"name": "甲", "sku": "IDEM-F", "price": 0.1}', key="precise")
    assert first.status_code == 201
    refused = send(client, "/api/products/", '{"name": "甲", "sku": "IDEM-F", "price": 0.1000000000000000000001}',
                   key="precise")
    assert refused.status_code == 422
    assert error_code(refused) == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("raw", [
    '{"product_id": 1, "quantity": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"product_id": 1, "quantity": 1e999999999, "reason": 1e999999999}',
], ids=["nested-100000-deep", "exponent-999999999"])
def test_bodies_too_deep_or_too_large_to_read_are_refused_with_a_key_too(client, create_product, raw):
    product_id = create_product(initial_quantity=5)["id"]
    refused = send(client, "/api/stock/add", raw, key="unreadable")
    assert refused.status_code == 400
    assert error_code(refused) == "VALIDATION_ERROR"
    assert stored_key_count(client.application) == 0
    assert state(client, product_id) == (5, 1)


def test_large_batch_response_with_chinese_and_emoji_replays_byte_for_byte(client, create_product):
    product_ids = [create_product(initial_quantity=0)["id"] for _ in range(4)]
    changes = [
        {"action": "add", "product_id": product_ids[i % 4], "quantity": 1,
         "reason": f"批量补货📦第{i}项" + "，备注" * 20, "operator": "张三"}
        for i in range(100)
    ]
    first = send(client, "/api/stock/batch", {"changes": changes}, key="big-batch")
    assert first.status_code == 200
    assert len(first.get_data()) > 65535  # more than a MySQL TEXT column holds

    again = send(client, "/api/stock/batch", {"changes": changes}, key="big-batch")

    assert_replay_of(first, again)
    assert "批量补货📦第99项" in again.get_data(as_text=True)
    assert [state(client, pid) for pid in product_ids] == [(25, 25)] * 4


def test_replay_survives_many_retries(client, create_product):
    product_id = create_product(initial_quantity=10)["id"]
    body = change_body("reduce", product_id, quantity=1)
    first = send(client, "/api/stock/reduce", body, key="many")
    for _ in range(5):
        assert_replay_of(first, send(client, "/api/stock/reduce", body, key="many"))
    assert state(client, product_id) == (9, 2)


def test_retry_of_a_compare_and_set_change_replays_instead_of_conflicting(client, create_product):
    product_id = create_product(initial_quantity=10)["id"]
    body = {"product_id": product_id, "quantity": 4, "expected_quantity": 10}
    first = send(client, "/api/stock/reduce", body, key="cas-retry")
    assert first.status_code == 200
    assert_replay_of(first, send(client, "/api/stock/reduce", body, key="cas-retry"))
    assert state(client, product_id) == (6, 2)


# ---- same key, other request ----

@pytest.mark.parametrize(
    "second_path, second_body",
    [
        ("/api/stock/add", lambda pid: {"product_id": pid, "quantity": 4, "reason": "补货"}),
        ("/api/stock/add", lambda pid: {"product_id": pid, "quantity": 3, "reason": "另一个原因"}),
        ("/api/stock/reduce", lambda pid: {"product_id": pid, "quantity": 3, "reason": "补货"}),
        ("/api/stock/batch", lambda pid: {"changes": [{"action": "add", "product_id": pid, "quantity": 3}]}),
    ],
    ids=["other-quantity", "other-reason", "other-endpoint", "other-endpoint-batch"],
)
def test_same_key_with_a_different_request_is_refused_and_changes_nothing(
    client, create_product, second_path, second_body
):
    product_id = create_product(initial_quantity=10)["id"]
    first = send(client, "/api/stock/add", change_body("add", product_id), key="reused")
    assert first.status_code == 200
    after_first = state(client, product_id)

    refused = send(client, second_path, second_body(product_id), key="reused")

    assert refused.status_code == 422
    assert error_code(refused) == "IDEMPOTENCY_KEY_REUSED"
    assert REPLAYED not in refused.headers
    assert state(client, product_id) == after_first


def test_same_key_for_another_product_create_is_refused(client):
    first = send(client, "/api/products/", {"name": "甲", "sku": "IDEM-A", "price": 1}, key="create-reused")
    assert first.status_code == 201
    refused = send(client, "/api/products/", {"name": "乙", "sku": "IDEM-B", "price": 1}, key="create-reused")
    assert refused.status_code == 422
    assert error_code(refused) == "IDEMPOTENCY_KEY_REUSED"
    assert product_count(client) == 1


def test_keys_are_case_sensitive(client, create_product):
    product_id = create_product(initial_quantity=0)["id"]
    body = change_body("add", product_id, quantity=1)
    assert REPLAYED not in send(client, "/api/stock/add", body, key="order-abc").headers
    assert REPLAYED not in send(client, "/api/stock/add", body, key="ORDER-ABC").headers
    assert state(client, product_id) == (2, 2)


# ---- failures store nothing ----

def test_request_that_failed_with_insufficient_stock_runs_again_on_retry(client, create_product):
    product_id = create_product(initial_quantity=5)["id"]
    body = {"product_id": product_id, "quantity": 8}

    failed = send(client, "/api/stock/reduce", body, key="retry-after-409")
    assert failed.status_code == 409
    assert error_code(failed) == "INSUFFICIENT_STOCK"
    assert state(client, product_id) == (5, 1)

    assert send(client, "/api/stock/add", change_body("add", product_id, quantity=5)).status_code == 200
    retried = send(client, "/api/stock/reduce", body, key="retry-after-409")
    assert retried.status_code == 200
    assert REPLAYED not in retried.headers
    assert state(client, product_id) == (2, 3)


def test_request_that_failed_validation_stores_nothing(client, create_product):
    product_id = create_product(initial_quantity=5)["id"]
    invalid = {"product_id": product_id, "quantity": 0}

    for _ in range(2):
        failed = send(client, "/api/stock/add", invalid, key="retry-after-400")
        assert failed.status_code == 400
        assert REPLAYED not in failed.headers
    assert stored_key_count(client.application) == 0

    fixed = send(client, "/api/stock/add", {"product_id": product_id, "quantity": 1}, key="retry-after-400")
    assert fixed.status_code == 200
    assert REPLAYED not in fixed.headers
    assert state(client, product_id) == (6, 2)


def test_failed_batch_stores_nothing_so_its_retry_runs_again(client, create_product):
    product_id = create_product(initial_quantity=1)["id"]
    body = {"changes": [{"action": "reduce", "product_id": product_id, "quantity": 2}]}
    assert send(client, "/api/stock/batch", body, key="batch-retry").status_code == 409
    send(client, "/api/stock/add", change_body("add", product_id, quantity=1))
    retried = send(client, "/api/stock/batch", body, key="batch-retry")
    assert retried.status_code == 200
    assert REPLAYED not in retried.headers
    assert state(client, product_id)[0] == 0


# ---- the header itself ----

@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "has space", "tab\tkey", "bell\x07", "del\x7f", "ключ"],
    ids=["empty", "too-long", "space", "tab", "control", "delete", "non-ascii"],
)
def test_invalid_key_is_refused_with_400_and_changes_nothing(client, create_product, key):
    product_id = create_product(initial_quantity=5)["id"]
    response = client.post(
        "/api/stock/add",
        json=change_body("add", product_id),
        headers=[(KEY_HEADER, key.encode("utf-8").decode("latin-1"))],
    )
    assert response.status_code == 400
    assert response.get_json()["success"] is False
    assert error_code(response) == "VALIDATION_ERROR"
    assert state(client, product_id) == (5, 1)


def test_key_of_255_visible_characters_is_accepted(client, create_product):
    product_id = create_product()["id"]
    key = "k" * 254 + "~"
    first = send(client, "/api/stock/add", change_body("add", product_id), key=key)
    assert first.status_code == 200
    assert_replay_of(first, send(client, "/api/stock/add", change_body("add", product_id), key=key))


def test_without_the_header_every_request_applies(client, create_product):
    product_id = create_product(initial_quantity=0)["id"]
    for _ in range(2):
        response = send(client, "/api/stock/add", change_body("add", product_id, quantity=2))
        assert response.status_code == 200
        assert REPLAYED not in response.headers
    assert state(client, product_id) == (4, 2)
    assert stored_key_count(client.application) == 0


# ---- retention ----

def test_key_older_than_the_retention_period_is_not_replayed(app, client, create_product):
    product_id = create_product(initial_quantity=0)["id"]
    body = change_body("add", product_id, quantity=2)
    assert send(client, "/api/stock/add", body, key="old").status_code == 200
    age_idempotency_keys(app, app.config["IDEMPOTENCY_TTL_HOURS"] + 1)

    again = send(client, "/api/stock/add", body, key="old")

    assert again.status_code == 200
    assert REPLAYED not in again.headers
    assert state(client, product_id) == (4, 2)
    assert_replay_of(again, send(client, "/api/stock/add", body, key="old"))


def test_expired_key_may_be_used_for_a_different_request(app, client, create_product):
    product_id = create_product(initial_quantity=0)["id"]
    assert send(client, "/api/stock/add", change_body("add", product_id, 1), key="recycled").status_code == 200
    age_idempotency_keys(app, app.config["IDEMPOTENCY_TTL_HOURS"] + 1)
    assert send(client, "/api/stock/add", change_body("add", product_id, 5), key="recycled").status_code == 200
    assert state(client, product_id) == (6, 2)


def test_prune_command_deletes_only_expired_keys(app, client, runner, create_product):
    product_id = create_product(initial_quantity=0)["id"]
    send(client, "/api/stock/add", change_body("add", product_id, 1), key="expired-1")
    send(client, "/api/stock/add", change_body("add", product_id, 2), key="expired-2")
    age_idempotency_keys(app, app.config["IDEMPOTENCY_TTL_HOURS"] + 1)
    fresh = send(client, "/api/stock/add", change_body("add", product_id, 3), key="fresh")
    assert stored_key_count(app) == 3

    result = runner.invoke(args=["idempotency", "prune"])

    assert result.exit_code == 0, result.output
    assert "pruned 2" in result.output
    assert stored_key_count(app) == 1
    assert_replay_of(fresh, send(client, "/api/stock/add", change_body("add", product_id, 3), key="fresh"))


def test_prune_keeps_keys_within_the_retention_period(app, client, runner, create_product):
    product_id = create_product()["id"]
    send(client, "/api/stock/add", change_body("add", product_id), key="recent")
    age_idempotency_keys(app, app.config["IDEMPOTENCY_TTL_HOURS"] - 1)
    result = runner.invoke(args=["idempotency", "prune"])
    assert result.exit_code == 0, result.output
    assert stored_key_count(app) == 1
