"""Compare-and-set on stock (`expected_quantity`) and ETag / If-Match on products (SPEC §6)."""
import pytest


def stock_state(client, product_id: int) -> tuple[int, int]:
    """(current quantity, number of log rows) of a product."""
    quantity = client.get(f"/api/stock/product/{product_id}").get_json()["data"]["quantity"]
    logs = client.get(f"/api/logs/product/{product_id}").get_json()["data"]["pagination"]["total"]
    return quantity, logs


def error_of(response) -> dict:
    return response.get_json()["error"]


# ---- expected_quantity ----

CHANGES = [
    # endpoint, quantity sent, resulting level from 10
    ("add", 5, 15),
    ("reduce", 4, 6),
    ("adjust", 7, 7),
]


@pytest.mark.parametrize("endpoint, quantity, result", CHANGES, ids=[c[0] for c in CHANGES])
def test_change_applies_when_expected_quantity_matches(client, create_product, endpoint, quantity, result):
    product_id = create_product(initial_quantity=10)["id"]
    response = client.post(
        f"/api/stock/{endpoint}", json={"product_id": product_id, "quantity": quantity, "expected_quantity": 10}
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["stock"]["quantity"] == result
    assert (data["log"]["before_quantity"], data["log"]["after_quantity"]) == (10, result)
    assert stock_state(client, product_id) == (result, 2)


@pytest.mark.parametrize("endpoint, quantity, result", CHANGES, ids=[c[0] for c in CHANGES])
@pytest.mark.parametrize("expected", [9, 11, 0])
def test_expected_quantity_mismatch_is_a_conflict_and_changes_nothing(
    client, create_product, endpoint, quantity, result, expected
):
    product_id = create_product(initial_quantity=10)["id"]
    response = client.post(
        f"/api/stock/{endpoint}", json={"product_id": product_id, "quantity": quantity, "expected_quantity": expected}
    )
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "CONFLICT"
    assert error["details"]["current_quantity"] == 10
    assert stock_state(client, product_id) == (10, 1)


def test_expected_quantity_is_checked_against_the_level_after_earlier_changes(client, create_product):
    product_id = create_product(initial_quantity=10)["id"]
    client.post("/api/stock/add", json={"product_id": product_id, "quantity": 1})
    stale = client.post("/api/stock/reduce", json={"product_id": product_id, "quantity": 1, "expected_quantity": 10})
    fresh = client.post("/api/stock/reduce", json={"product_id": product_id, "quantity": 1, "expected_quantity": 11})
    assert (stale.status_code, fresh.status_code) == (409, 200)
    assert stock_state(client, product_id) == (10, 3)


def test_adjust_with_matching_expected_quantity_and_same_count_logs_nothing(client, create_product):
    product_id = create_product(initial_quantity=10)["id"]
    response = client.post("/api/stock/adjust", json={"product_id": product_id, "quantity": 10, "expected_quantity": 10})
    assert response.status_code == 200
    assert response.get_json()["data"]["log"] is None
    assert stock_state(client, product_id) == (10, 1)


@pytest.mark.parametrize("expected", [-1, 1.5, "10", True])
def test_invalid_expected_quantity_is_a_validation_error(client, create_product, expected):
    product_id = create_product(initial_quantity=10)["id"]
    response = client.post("/api/stock/add", json={"product_id": product_id, "quantity": 1, "expected_quantity": expected})
    assert response.status_code == 400
    assert error_of(response)["code"] == "VALIDATION_ERROR"
    assert stock_state(client, product_id) == (10, 1)


# ---- ETag / If-Match ----

def get_product(client, product_id: int):
    return client.get(f"/api/products/{product_id}")


def write(client, method: str, product_id: int, if_match: str | None = None, **fields):
    """PUT/PATCH (with `fields`, default a new name) or DELETE, optionally conditional."""
    headers = {} if if_match is None else {"If-Match": if_match}
    if method == "DELETE":
        return client.delete(f"/api/products/{product_id}", headers=headers)
    return client.open(f"/api/products/{product_id}", method=method, json=fields or {"name": "新名字"}, headers=headers)


def assert_strong_etag(response) -> str:
    tag = response.headers.get("ETag")
    assert tag and tag.startswith('"') and tag.endswith('"'), tag
    return tag


def test_product_reads_and_writes_carry_the_same_etag_for_the_same_version(client):
    created = client.post("/api/products/", json={"name": "带标签", "sku": "ETAG-1", "price": 1})
    tag = assert_strong_etag(created)
    product_id = created.get_json()["data"]["id"]
    assert assert_strong_etag(get_product(client, product_id)) == tag

    updated = write(client, "PUT", product_id)
    new_tag = assert_strong_etag(updated)
    assert new_tag != tag
    assert assert_strong_etag(get_product(client, product_id)) == new_tag


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_edit_with_matching_if_match_applies_and_changes_the_etag(client, create_product, method):
    product_id = create_product(name="旧名字")["id"]
    tag = get_product(client, product_id).headers["ETag"]

    response = write(client, method, product_id, if_match=tag, name="新名字")

    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["name"] == "新名字"
    assert response.headers["ETag"] != tag
    assert get_product(client, product_id).headers["ETag"] == response.headers["ETag"]


def test_stock_settings_edit_also_changes_the_etag(client, create_product):
    product_id = create_product()["id"]
    tag = get_product(client, product_id).headers["ETag"]
    response = write(client, "PUT", product_id, if_match=tag, min_quantity=3)
    assert response.status_code == 200
    assert response.headers["ETag"] != tag
    assert write(client, "PUT", product_id, if_match=tag, name="过期").status_code == 412


def test_stock_settings_changed_through_adjust_invalidate_the_product_etag(client, create_product):
    """The product read shows `stock.location`; once another client moves it, an edit
    made against the old representation must not overwrite the move (no lost update)."""
    product_id = create_product()["id"]
    seen = get_product(client, product_id).headers["ETag"]
    moved = client.post("/api/stock/adjust", json={"product_id": product_id, "quantity": 0, "location": "B-9"})
    assert moved.status_code == 200

    now = get_product(client, product_id)
    assert now.get_json()["data"]["stock"]["location"] == "B-9"
    assert now.headers["ETag"] != seen
    assert write(client, "PUT", product_id, if_match=seen, location="A-1").status_code == 412
    assert get_product(client, product_id).get_json()["data"]["stock"]["location"] == "B-9"


def test_delete_with_matching_if_match_removes_the_product(client, create_product):
    product_id = create_product()["id"]
    tag = get_product(client, product_id).headers["ETag"]
    assert write(client, "DELETE", product_id, if_match=tag).status_code == 200
    assert get_product(client, product_id).status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_stale_if_match_is_412_and_changes_nothing(client, create_product, method):
    product_id = create_product(name="原名")["id"]
    stale = get_product(client, product_id).headers["ETag"]
    current = write(client, "PUT", product_id, name="第二版").headers["ETag"]

    response = write(client, method, product_id, if_match=stale, name="第三版")

    assert response.status_code == 412
    assert error_of(response)["code"] == "PRECONDITION_FAILED"
    now = get_product(client, product_id)
    assert now.status_code == 200
    assert now.get_json()["data"]["name"] == "第二版"
    assert now.headers["ETag"] == current


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_star_matches_any_current_version(client, create_product, method):
    product_id = create_product()["id"]
    write(client, "PUT", product_id, name="改过一次")
    assert write(client, method, product_id, if_match="*").status_code == 200


def test_if_match_list_matches_when_one_tag_is_current(client, create_product):
    product_id = create_product()["id"]
    tag = get_product(client, product_id).headers["ETag"]
    assert write(client, "PUT", product_id, if_match=f'"no-such-version", {tag}').status_code == 200


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_weak_etag_never_matches(client, create_product, method):
    product_id = create_product(name="原名")["id"]
    tag = get_product(client, product_id).headers["ETag"]

    response = write(client, method, product_id, if_match=f"W/{tag}")

    assert response.status_code == 412
    assert error_of(response)["code"] == "PRECONDITION_FAILED"
    now = get_product(client, product_id)
    assert (now.get_json()["data"]["name"], now.headers["ETag"]) == ("原名", tag)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_without_if_match_writes_are_unconditional(client, create_product, method):
    product_id = create_product()["id"]
    write(client, "PUT", product_id, name="别人改过")
    assert write(client, method, product_id).status_code == 200


def test_if_match_on_unknown_product_is_404(client, create_product):
    product_id = create_product()["id"]
    client.delete(f"/api/products/{product_id}")
    assert write(client, "PUT", product_id, if_match="*").status_code == 404
