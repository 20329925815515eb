"""Stock levels and movements (SPEC §3 "Stock", §4)."""
from datetime import datetime

import pytest

from tests.helpers import LOG_FIELDS, MISSING_ID, assert_error, ok

STOCK = "/api/stock/"
LOW_STOCK = "/api/stock/low-stock"
STOCK_SORTS = ("product_id", "name", "sku", "quantity", "min_quantity", "updated_at")
STOCK_FIELDS = {"product_id", "quantity", "min_quantity", "max_quantity", "location", "is_low", "updated_at", "product"}


# ---- helpers ----





def post(client, action: str, product_id: int, quantity, **extra):
    return client.post(f"/api/stock/{action}", json={"product_id": product_id, "quantity": quantity, **extra})


def change(client, action: str, product_id: int, quantity, **extra) -> dict:
    """A successful stock change's `data: {stock, log}`."""
    return ok(post(client, action, product_id, quantity, **extra))


def stock_of(client, product_id: int) -> dict:
    """The product's stock as a change answers it: without its per-warehouse `levels`."""
    stock = ok(client.get(f"/api/stock/product/{product_id}"))
    stock.pop("levels")
    return stock


def logs_of(client, product_id: int) -> list[dict]:
    return ok(client.get(f"/api/logs/product/{product_id}", query_string={"per_page": 100}))["items"]


def listed(client, path: str = STOCK, **query) -> list[dict]:
    return ok(client.get(path, query_string={"per_page": 100, **query}))["items"]


def listed_ids(client, path: str = STOCK, **query) -> list[int]:
    return [row["product_id"] for row in listed(client, path, **query)]


def assert_unchanged(client, product_id: int, stock_before: dict, logs_before: list[dict]) -> None:
    assert stock_of(client, product_id) == stock_before
    assert logs_of(client, product_id) == logs_before


# ---- add / reduce ----

def test_add_increases_stock_and_logs_in(client, create_product):
    product = create_product(initial_quantity=3)
    data = change(client, "add", product["id"], 5, reason="采购入库", operator="张三")

    assert data.keys() == {"stock", "log"}
    assert STOCK_FIELDS <= data["stock"].keys()
    assert data["stock"]["quantity"] == 8
    assert data["stock"]["product"] == {"id": product["id"], "name": product["name"],
                                        "sku": product["sku"], "category": None}
    log = data["log"]
    assert LOG_FIELDS <= log.keys()
    assert (log["action"], log["quantity"], log["before_quantity"], log["after_quantity"]) == ("in", 5, 3, 8)
    assert (log["reason"], log["operator"]) == ("采购入库", "张三")
    assert (log["product_id"], log["sku"], log["name"]) == (product["id"], product["sku"], product["name"])
    assert stock_of(client, product["id"]) == data["stock"]
    assert logs_of(client, product["id"])[0] == log


def test_reduce_decreases_stock_and_logs_out_with_positive_quantity(client, create_product):
    product = create_product(initial_quantity=10)
    data = change(client, "reduce", product["id"], 4, reason="销售出库")
    log = data["log"]
    assert data["stock"]["quantity"] == 6
    assert (log["action"], log["quantity"], log["before_quantity"], log["after_quantity"]) == ("out", 4, 10, 6)
    assert log["reason"] == "销售出库" and log["operator"] is None


def test_reduce_to_exactly_zero_is_allowed(client, create_product):
    product = create_product(initial_quantity=5)
    assert change(client, "reduce", product["id"], 5)["stock"]["quantity"] == 0


def test_reduce_below_zero_changes_nothing(client, create_product):
    product = create_product(initial_quantity=3)
    stock_before, logs_before = stock_of(client, product["id"]), logs_of(client, product["id"])

    details = assert_error(post(client, "reduce", product["id"], 5), 409, "INSUFFICIENT_STOCK")

    assert (details["available"], details["requested"]) == (3, 5)
    assert_unchanged(client, product["id"], stock_before, logs_before)


def test_reduce_on_empty_stock_is_insufficient(client, create_product):
    product = create_product()
    details = assert_error(post(client, "reduce", product["id"], 1), 409, "INSUFFICIENT_STOCK")
    assert (details["available"], details["requested"]) == (0, 1)
    assert logs_of(client, product["id"]) == []


def test_blank_reason_and_operator_are_stored_as_null(client, create_product):
    product = create_product()
    log = change(client, "add", product["id"], 1, reason="", operator="   ")["log"]
    assert (log["reason"], log["operator"]) == (None, None)


# ---- adjust ----

@pytest.mark.parametrize("counted, delta", [(15, 5), (4, -6), (0, -10)])
def test_adjust_sets_the_count_and_logs_the_signed_difference(client, create_product, counted, delta):
    product = create_product(initial_quantity=10)
    data = change(client, "adjust", product["id"], counted, reason="盘点")
    log = data["log"]
    assert data["stock"]["quantity"] == counted
    assert (log["action"], log["quantity"], log["before_quantity"], log["after_quantity"]) == ("adjust", delta, 10, counted)
    assert log["reason"] == "盘点"


def test_adjust_that_changes_no_count_writes_no_log(client, create_product):
    product = create_product(initial_quantity=7)
    logs_before = logs_of(client, product["id"])
    data = change(client, "adjust", product["id"], 7)
    assert data["log"] is None
    assert data["stock"]["quantity"] == 7
    assert logs_of(client, product["id"]) == logs_before


def test_adjust_sets_min_max_and_location(client, create_product):
    product = create_product(initial_quantity=3)
    data = change(client, "adjust", product["id"], 3, min_quantity=5, max_quantity=20, location="B-07")
    assert data["log"] is None
    expected = {"quantity": 3, "min_quantity": 5, "max_quantity": 20, "location": "B-07", "is_low": True}
    assert {key: data["stock"][key] for key in expected} == expected
    assert stock_of(client, product["id"]) == data["stock"]
    assert ok(client.get(f"/api/products/{product['id']}"))["stock"] == {**expected, "reserved": 0, "available": 3}


def test_adjust_with_count_and_settings_applies_both(client, create_product):
    product = create_product(initial_quantity=3)
    data = change(client, "adjust", product["id"], 12, min_quantity=2, location="C-01")
    assert (data["stock"]["quantity"], data["stock"]["min_quantity"], data["stock"]["location"]) == (12, 2, "C-01")
    assert data["log"]["quantity"] == 9


def test_adjust_null_clears_max_and_location(client, create_product):
    product = create_product(max_quantity=9, location="A-01")
    data = change(client, "adjust", product["id"], 0, max_quantity=None, location=None)
    assert (data["stock"]["max_quantity"], data["stock"]["location"]) == (None, None)


def test_adjust_leaves_settings_not_sent_alone(client, create_product):
    product = create_product(min_quantity=2, max_quantity=9, location="A-01")
    stock = change(client, "adjust", product["id"], 4)["stock"]
    assert (stock["min_quantity"], stock["max_quantity"], stock["location"]) == (2, 9, "A-01")


@pytest.mark.parametrize("settings, status, code", [
    ({"min_quantity": 10, "max_quantity": 5}, 400, "VALIDATION_ERROR"),
    ({"max_quantity": 1}, 409, "CONFLICT"),    # below the existing min_quantity 2
    ({"min_quantity": 20}, 409, "CONFLICT"),   # above the existing max_quantity 9
], ids=["both", "max-below-existing-min", "min-above-existing-max"])
def test_adjust_with_max_below_min_changes_nothing(client, create_product, settings, status, code):
    product = create_product(initial_quantity=4, min_quantity=2, max_quantity=9)
    stock_before, logs_before = stock_of(client, product["id"]), logs_of(client, product["id"])

    details = assert_error(post(client, "adjust", product["id"], 6, **settings), status, code)

    assert "max_quantity" in details
    assert_unchanged(client, product["id"], stock_before, logs_before)


# ---- unknown products ----

@pytest.mark.parametrize("action", ["add", "reduce", "adjust"])
def test_stock_change_for_unknown_product_is_not_found(client, action):
    assert_error(post(client, action, MISSING_ID, 1), 404, "NOT_FOUND")
    assert listed(client, "/api/logs/") == []


def test_get_stock_of_unknown_product_is_not_found(client):
    assert_error(client.get(f"/api/stock/product/{MISSING_ID}"), 404, "NOT_FOUND")


# ---- reads ----

def test_get_stock_for_product(client, create_product):
    product = create_product(category="文具", initial_quantity=2, min_quantity=2, max_quantity=8, location="A-01")
    stock = stock_of(client, product["id"])
    assert STOCK_FIELDS <= stock.keys()
    assert stock["product_id"] == product["id"]
    assert (stock["quantity"], stock["min_quantity"], stock["max_quantity"]) == (2, 2, 8)
    assert (stock["location"], stock["is_low"]) == ("A-01", True)
    assert stock["product"] == {"id": product["id"], "name": product["name"], "sku": product["sku"], "category": "文具"}


@pytest.mark.parametrize("quantity, min_quantity, is_low",
                         [(0, 0, False), (5, 0, False), (4, 5, True), (5, 5, True), (6, 5, False)])
def test_is_low_means_at_or_below_a_set_minimum(client, create_product, quantity, min_quantity, is_low):
    product = create_product(initial_quantity=quantity, min_quantity=min_quantity)
    assert stock_of(client, product["id"])["is_low"] is is_low
    assert product["stock"]["is_low"] is is_low


def test_low_stock_lists_shortages_largest_first(client, create_product):
    short_8 = create_product(min_quantity=10, initial_quantity=2)["id"]
    at_minimum = create_product(min_quantity=5, initial_quantity=5)["id"]
    create_product(min_quantity=5, initial_quantity=6)            # above its minimum
    create_product(min_quantity=0, initial_quantity=0)            # no threshold
    short_3 = create_product(min_quantity=3)["id"]

    assert listed_ids(client, LOW_STOCK) == [short_8, short_3, at_minimum]


def test_low_stock_paginates(client, create_product):
    for _ in range(3):
        create_product(min_quantity=1)
    data = ok(client.get(LOW_STOCK, query_string={"per_page": 2, "page": 2}))
    assert len(data["items"]) == 1
    assert {"page": 2, "per_page": 2, "total": 3, "pages": 2}.items() <= data["pagination"].items()


def test_low_stock_empty_has_zero_pages(client, create_product):
    create_product(min_quantity=1, initial_quantity=5)
    data = ok(client.get(LOW_STOCK))
    assert data["items"] == []
    assert {"total": 0, "pages": 0}.items() <= data["pagination"].items()


def test_stock_list_shows_product_summary(client, create_product):
    product = create_product(category="文具", initial_quantity=3)
    (row,) = listed(client)
    assert STOCK_FIELDS <= row.keys()
    assert row["quantity"] == 3
    assert row["product"] == {"id": product["id"], "name": product["name"], "sku": product["sku"], "category": "文具"}


@pytest.fixture
def stocked(create_product):
    """Three products in different categories, locations and stock situations."""
    return {
        "pen": create_product(name="蓝色圆珠笔", sku="PEN-01", category="文具", location="A-01",
                              min_quantity=5, initial_quantity=2)["id"],
        "cup": create_product(name="白色水杯", sku="CUP-01", category="厨具", location="B-01",
                              min_quantity=1, initial_quantity=9)["id"],
        "ink": create_product(name="墨水", sku="INK-01", category="文具", location="B-01")["id"],
    }


def test_stock_list_filters_by_q_on_name_and_sku(client, stocked):
    assert listed_ids(client, q="水杯") == [stocked["cup"]]
    assert listed_ids(client, q="PEN-01") == [stocked["pen"]]
    assert listed_ids(client, q="没有") == []


def test_stock_list_q_takes_wildcards_literally(client, create_product):
    percent = create_product(name="50% off")["id"]
    underscore = create_product(sku="A_1")["id"]
    create_product(name="500 off", sku="AB1")
    assert listed_ids(client, q="50%") == [percent]
    assert listed_ids(client, q="A_1") == [underscore]


def test_stock_list_filters_by_category_and_location(client, stocked):
    assert listed_ids(client, category="文具") == [stocked["pen"], stocked["ink"]]
    assert listed_ids(client, location="B-01") == [stocked["cup"], stocked["ink"]]
    assert listed_ids(client, category="文具", location="B-01") == [stocked["ink"]]


def test_stock_list_location_filter_is_exact(client, create_product):
    upper = create_product(location="B-01")["id"]
    create_product(location="b-01")
    create_product(location="Ｂ-01")
    assert listed_ids(client, location="B-01") == [upper]


@pytest.mark.parametrize("value, only_low", [("true", True), ("1", True), ("false", False), ("0", False)])
def test_stock_list_low_only_accepts_query_booleans(client, stocked, value, only_low):
    expected = [stocked["pen"]] if only_low else [stocked["pen"], stocked["cup"], stocked["ink"]]
    assert listed_ids(client, low_only=value) == expected


def test_stock_list_low_only_rejects_other_values(client, stocked):
    details = assert_error(client.get(STOCK, query_string={"low_only": "yes please"}), 400, "VALIDATION_ERROR")
    assert "low_only" in details


@pytest.fixture
def sortable(client, create_product):
    """Rows whose name, sku, quantity, min_quantity and updated_at orders all differ from id order."""
    ids = [
        create_product(name="Bravo", sku="SKU-C", initial_quantity=30, min_quantity=2)["id"],
        create_product(name="Charlie", sku="SKU-A", initial_quantity=10, min_quantity=3)["id"],
        create_product(name="Alpha", sku="SKU-B", initial_quantity=20, min_quantity=1)["id"],
    ]
    change(client, "add", ids[1], 1)
    change(client, "add", ids[0], 1)
    return listed(client)


def stock_sort_value(row: dict, key: str):
    if key in ("name", "sku"):
        return row["product"][key]
    return datetime.fromisoformat(row[key]) if key == "updated_at" else row[key]


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("key", STOCK_SORTS)
def test_stock_list_sorts_by_every_key(client, sortable, key, descending):
    ordered = sorted(sortable, key=lambda row: stock_sort_value(row, key), reverse=descending)
    assert listed_ids(client, sort=f"-{key}" if descending else key) == [row["product_id"] for row in ordered]


def test_stock_list_rejects_unknown_sort(client):
    assert "sort" in assert_error(client.get(STOCK, query_string={"sort": "price"}), 400, "VALIDATION_ERROR")


def test_a_deleted_product_leaves_the_low_stock_list(client, create_product):
    product_id = create_product(min_quantity=5, initial_quantity=2)["id"]
    low = lambda: [row["product_id"] for row in ok(client.get(LOW_STOCK))["items"]]  # noqa: E731
    assert product_id in low()
    ok(client.delete(f"/api/products/{product_id}"))
    assert product_id not in low()
