"""Products (SPEC §3 "Products", with the envelope of §2)."""
import json
from datetime import datetime, timedelta

import pytest

from db import db
from tests.helpers import MISSING_ID, assert_error, ok, sorted_statements

PRODUCTS = "/api/products/"
PRODUCT_FIELDS = {"id", "name", "description", "price", "category", "sku", "created_at", "updated_at", "stock"}
STOCK_FIELDS = {"quantity", "min_quantity", "max_quantity", "location", "is_low"}
PRODUCT_SORTS = ("id", "name", "price", "sku", "created_at", "updated_at")


# ---- helpers ----

def product_url(product_id: int) -> str:
    return f"/api/products/{product_id}"






def list_products(client, **query) -> dict:
    return ok(client.get(PRODUCTS, query_string=query))


def listed_ids(client, path: str = PRODUCTS, **query) -> list[int]:
    items = ok(client.get(path, query_string={"per_page": 100, **query}))["items"]
    return [item["id"] if "id" in item else item["product_id"] for item in items]


def get_product(client, product_id: int) -> dict:
    return ok(client.get(product_url(product_id)))


def product_logs(client, product_id: int) -> list[dict]:
    return ok(client.get(f"/api/logs/product/{product_id}", query_string={"per_page": 100}))["items"]


def post_raw(client, path: str, text: str):
    """POST a JSON text exactly as written (numbers the way a client spells them)."""
    return client.post(path, data=text.encode("utf-8"), content_type="application/json")


def assert_pagination(data: dict, **expected) -> None:
    assert expected.items() <= data["pagination"].items()


# ---- list ----

def test_empty_list_has_zero_pages(client):
    data = list_products(client)
    assert data["items"] == []
    assert_pagination(data, page=1, per_page=20, total=0, pages=0)


def test_list_pages_through_products_in_id_order(client, create_product):
    created = [create_product()["id"] for _ in range(5)]

    first = list_products(client, per_page=2)
    assert [p["id"] for p in first["items"]] == created[:2]
    assert_pagination(first, page=1, per_page=2, total=5, pages=3)

    last = list_products(client, per_page=2, page=3)
    assert [p["id"] for p in last["items"]] == created[4:]

    beyond = list_products(client, per_page=2, page=4)
    assert beyond["items"] == []
    assert_pagination(beyond, page=4, total=5, pages=3)


@pytest.mark.parametrize("per_page", [1, 100])
def test_per_page_bounds_are_accepted(client, create_product, per_page):
    create_product()
    create_product()
    data = list_products(client, per_page=per_page)
    assert len(data["items"]) == min(per_page, 2)
    assert_pagination(data, per_page=per_page, total=2)


@pytest.mark.parametrize("per_page", [0, 101])
def test_per_page_out_of_bounds_is_rejected(client, per_page):
    details = assert_error(client.get(PRODUCTS, query_string={"per_page": per_page}), 400, "VALIDATION_ERROR")
    assert "per_page" in details


def test_list_items_carry_stock(client, create_product):
    create_product(initial_quantity=3, min_quantity=5)
    (item,) = list_products(client)["items"]
    assert PRODUCT_FIELDS <= item.keys()
    assert item["stock"] == {"quantity": 3, "reserved": 0, "available": 3, "min_quantity": 5, "max_quantity": None,
                             "location": None, "is_low": True}


def test_q_matches_name_sku_and_description(client, create_product):
    by_name = create_product(name="蓝色水杯")
    by_sku = create_product(sku="CUP-42")
    by_description = create_product(description="一只白色杯子")
    create_product(name="铅笔", sku="PEN-1", description="写字用")

    assert listed_ids(client, q="水杯") == [by_name["id"]]
    assert listed_ids(client, q="CUP-42") == [by_sku["id"]]
    assert listed_ids(client, q="杯子") == [by_description["id"]]
    assert listed_ids(client, q="不存在的词") == []


def test_q_takes_wildcards_literally(client, create_product):
    percent = create_product(name="50% off")
    underscore = create_product(sku="A_1")
    create_product(name="500 off", sku="AB1")

    assert listed_ids(client, q="50%") == [percent["id"]]
    assert listed_ids(client, q="A_1") == [underscore["id"]]


def test_category_filter_is_exact(client, create_product):
    food = create_product(category="食品")
    create_product(category="食品饮料")
    create_product()
    assert listed_ids(client, category="食品") == [food["id"]]


@pytest.mark.parametrize("sort", ["id", "-id"])
def test_a_categorys_page_by_id_is_read_off_the_categorys_index(app, client, create_product, sort):
    """In id order a category's products are its index's own order: the page never walks
    every live product by id testing each one's category (MariaDB's choice unhinted)."""
    ids = [create_product(name=f"分类{index}", category="饮料" if index % 2 else "食品")["id"] for index in range(6)]
    with app.app_context():
        with sorted_statements() as statements:
            page = ok(client.get("/api/products/", query_string={"category": "食品", "sort": sort, "per_page": 1,
                                                                  "page": 2}))
        assert [item["id"] for item in page["items"]] == [sorted(ids[0::2], reverse=sort == "-id")[1]]
        (statement, parameters), = statements
        if db.engine.dialect.name == "sqlite":
            plan = db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
            assert not any("TEMP B-TREE" in row[-1] for row in plan), plan
        else:
            # With a handful of rows MariaDB takes this index by itself; at 100,000 it needs the hint.
            assert "FORCE INDEX (ix_products_category)" in statement
            plan = db.session.connection().exec_driver_sql(f"EXPLAIN {statement}", parameters).mappings().all()
            assert [row["key"] for row in plan] == ["ix_products_category"], plan


def test_categories_that_differ_in_case_or_width_are_different_categories(client, create_product):
    spellings = ("Food", "food", "ＦＯＯＤ")
    ids = {spelling: create_product(category=spelling)["id"] for spelling in spellings}
    for spelling in spellings:
        assert listed_ids(client, category=spelling) == [ids[spelling]]
    categories = client.get("/api/products/categories").get_json()["data"]
    assert {row["category"]: row["product_count"] for row in categories} == dict.fromkeys(spellings, 1)


def test_negative_zero_price_is_answered_as_zero_as_it_is_stored(client):
    created = client.post("/api/products/", data='{"name": "赠品", "sku": "ZERO-1", "price": -0.0}',
                          content_type="application/json")
    assert created.status_code == 201, created.get_json()
    assert b'"price":0.0' in created.get_data()
    assert client.get(created.headers["Location"]).get_json()["data"]["price"] == 0.0


def test_price_filters_are_inclusive(client, create_product):
    cheap = create_product(price=0.1)["id"]
    middle = create_product(price=19.99)["id"]
    dear = create_product(price=100)["id"]

    assert listed_ids(client, min_price="19.99") == [middle, dear]
    assert listed_ids(client, max_price="19.99") == [cheap, middle]
    assert listed_ids(client, min_price="0.1", max_price="0.1") == [cheap]
    assert listed_ids(client, min_price="20", max_price="10") == []


@pytest.fixture
def sortable(client, create_product):
    """Three products whose name, sku, price and updated_at orders all differ from id order."""
    made = [
        create_product(name="Bravo", sku="SKU-C", price=30),
        create_product(name="Charlie", sku="SKU-A", price=10),
        create_product(name="Alpha", sku="SKU-B", price=20),
    ]
    ok(client.patch(product_url(made[0]["id"]), json={"description": "touched last"}))
    return list_products(client)["items"]


def sort_value(item: dict, key: str):
    value = item[key]
    return datetime.fromisoformat(value) if key.endswith("_at") else value


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("key", PRODUCT_SORTS)
def test_list_sorts_by_every_key(client, sortable, key, descending):
    expected = [p["id"] for p in sorted(sortable, key=lambda p: sort_value(p, key), reverse=descending)]
    assert listed_ids(client, sort=f"-{key}" if descending else key) == expected


def test_default_sort_is_id_ascending(client, sortable):
    assert listed_ids(client) == sorted(p["id"] for p in sortable)


@pytest.mark.parametrize("sort", ["id", "-id", "price", "-price", "name", "-updated_at"])
def test_pages_near_the_end_continue_the_same_order(client, create_product, sort):
    """Deep pages are read backwards from the end; paging through must still give
    exactly the one-page order, ties (equal prices and names) included."""
    for i in range(9):
        create_product(name=["乙", "甲"][i % 2], price=[5, 9, 5][i % 3], category="文具")
    expected = listed_ids(client, sort=sort)
    for query in ({}, {"category": "文具"}, {"q": "甲"}):
        whole = listed_ids(client, sort=sort, **query)
        paged = []
        for page in range(1, 7):
            paged += [item["id"] for item in list_products(client, sort=sort, per_page=2, page=page, **query)["items"]]
        assert paged == whole
    assert len(expected) == 9


def test_a_list_reads_its_total_and_keys_from_one_snapshot(app, client, create_product):
    """A deep page is counted back from the total, so both must see the same products
    even while another request creates one between the two reads."""
    import threading

    from sqlalchemy import func, select

    from db import db
    from models import Product
    from services.transaction import begin_snapshot

    create_product()
    counted = select(func.count()).select_from(Product)
    with app.test_request_context(PRODUCTS):
        begin_snapshot()
        before = db.session.scalar(counted)
        meanwhile = threading.Thread(target=create_product)  # another request, in its own context
        meanwhile.start()
        meanwhile.join()
        assert db.session.scalar(counted) == before
    assert list_products(client)["pagination"]["total"] == before + 1


def test_recount_rebuilds_counts_changed_behind_the_services_back(app, client, runner, create_product):
    from sqlalchemy import text

    from db import db

    for category in ("食品", "食品", None):
        create_product(category=category)
    with app.app_context():
        db.session.execute(text("UPDATE product_counts SET live = live + 5 WHERE category = ''"))
        db.session.commit()
    assert list_products(client)["pagination"]["total"] == 8
    result = runner.invoke(args=["products", "recount"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"食品": 2, "": 1}
    assert list_products(client)["pagination"]["total"] == 3
    assert list_products(client, category="食品")["pagination"]["total"] == 2


def test_an_empty_category_filter_lists_everything(client, create_product):
    for _ in range(2):
        create_product(category="食品")
    data = list_products(client, category="")
    assert len(data["items"]) == 2
    assert_pagination(data, total=2, pages=1)


def test_totals_follow_every_create_delete_and_category_change(client, create_product):
    food = [create_product(category="食品")["id"] for _ in range(3)]
    create_product(category="饮料")
    create_product()
    ok(client.patch(product_url(food[0]), json={"category": "饮料"}))
    ok(client.patch(product_url(food[1]), json={"category": None}))
    ok(client.delete(product_url(food[2])))

    assert list_products(client)["pagination"]["total"] == 4
    assert list_products(client, category="食品")["pagination"]["total"] == 0
    assert list_products(client, category="饮料")["pagination"]["total"] == 2
    assert ok(client.get("/api/products/categories")) == [{"category": "饮料", "product_count": 2}]


# ---- get ----

def test_get_answers_what_create_answered(client, create_product):
    made = create_product(category="文具", min_quantity=2, max_quantity=50, location="A-01", initial_quantity=1)
    data = get_product(client, made["id"])
    assert data == made
    assert PRODUCT_FIELDS <= data.keys()
    assert data["stock"] == {"quantity": 1, "reserved": 0, "available": 1, "min_quantity": 2,
                             "max_quantity": 50, "location": "A-01", "is_low": True}


def test_timestamps_are_utc_with_offset(client, create_product):
    data = get_product(client, create_product()["id"])
    for key in ("created_at", "updated_at"):
        assert datetime.fromisoformat(data[key]).utcoffset() == timedelta(0)


def test_get_unknown_product_is_not_found(client):
    assert_error(client.get(product_url(MISSING_ID)), 404, "NOT_FOUND")


# ---- create ----

def test_create_answers_201_with_location(client):
    response = client.post(PRODUCTS, json={"name": "订书机", "sku": "STAPLER-1", "price": 12.5, "category": "文具"})
    data = ok(response, 201)
    assert response.headers["Location"].endswith(product_url(data["id"]))
    assert get_product(client, data["id"]) == data
    assert data["name"] == "订书机" and data["sku"] == "STAPLER-1" and data["price"] == 12.5
    assert data["description"] is None
    assert data["stock"] == {"quantity": 0, "reserved": 0, "available": 0, "min_quantity": 0,
                             "max_quantity": None, "location": None, "is_low": False}


def test_create_without_initial_quantity_logs_nothing(client, create_product):
    product = create_product()
    assert product_logs(client, product["id"]) == []


def test_initial_quantity_is_logged_as_one_in_movement(client, create_product):
    product = create_product(initial_quantity=7)
    assert product["stock"]["quantity"] == 7
    (log,) = product_logs(client, product["id"])
    assert log["action"] == "in"
    assert (log["quantity"], log["before_quantity"], log["after_quantity"]) == (7, 0, 7)
    assert log["product_id"] == product["id"]
    assert log["sku"] == product["sku"] and log["name"] == product["name"]


def test_create_with_taken_sku_is_duplicate(client, create_product):
    create_product(sku="TAKEN")
    response = client.post(PRODUCTS, json={"name": "另一个", "sku": "TAKEN", "price": 1})
    assert assert_error(response, 409, "DUPLICATE") == {"sku": "TAKEN"}
    assert len(list_products(client)["items"]) == 1


CHINESE = {
    "name": "测试商品·𠮷野家📦",
    "description": "初始入库，“引号”与 café 和 e\u0301（组合字符）",
    "category": "食品饮料",
    "location": "仓库A-一号架",
}


def test_chinese_text_round_trips_byte_for_byte_unescaped(client):
    text = json.dumps({**CHINESE, "sku": "中文-SKU", "price": 1}, ensure_ascii=False)
    response = post_raw(client, PRODUCTS, text)
    created = ok(response, 201)

    assert b"\\u" not in response.data
    for value in (*CHINESE.values(), "中文-SKU"):
        assert value.encode("utf-8") in response.data

    read = client.get(product_url(created["id"]))
    assert b"\\u" not in read.data
    assert read.mimetype == "application/json"
    data = read.get_json()["data"]
    assert {key: data[key] for key in ("name", "description", "category")} == {
        key: CHINESE[key] for key in ("name", "description", "category")
    }
    assert data["stock"]["location"] == CHINESE["location"]
    assert data["sku"] == "中文-SKU"
    assert listed_ids(client, category="食品饮料") == [created["id"]]


# ---- prices ----

@pytest.mark.parametrize("price", ["0", "0.1", "19.99", "9999999999.99", "100", "5.5"])
def test_price_is_stored_exactly(client, price):
    created = ok(post_raw(client, PRODUCTS, f'{{"name": "价格", "sku": "P-1", "price": {price}}}'), 201)
    assert isinstance(created["price"], int | float) and not isinstance(created["price"], bool)
    assert created["price"] == float(price)
    assert get_product(client, created["id"])["price"] == float(price)
    assert listed_ids(client, min_price=price, max_price=price) == [created["id"]]


@pytest.mark.parametrize("price", ["1.234", "0.001", "19.999", "0.30000000000000004", "19.999999999999999999"])
def test_price_with_more_than_two_decimals_is_rejected(client, price):
    response = post_raw(client, PRODUCTS, f'{{"name": "价格", "sku": "P-1", "price": {price}}}')
    assert "price" in assert_error(response, 400, "VALIDATION_ERROR")
    assert list_products(client)["items"] == []


# ---- update ----

@pytest.fixture(params=["PUT", "PATCH"])
def update(client, request):
    """PUT and PATCH are the same partial update."""

    def send(product_id: int, body: dict):
        return client.open(product_url(product_id), method=request.param, json=body)

    return send


def test_update_changes_only_the_fields_sent(client, create_product, update):
    before = create_product(description="旧描述", category="文具", location="A-01", max_quantity=9, initial_quantity=4)
    after = ok(update(before["id"], {"price": 5}))
    assert after["price"] == 5
    unchanged = {key: value for key, value in before.items() if key not in ("price", "updated_at")}
    assert {key: after[key] for key in unchanged} == unchanged
    assert datetime.fromisoformat(after["updated_at"]) >= datetime.fromisoformat(before["updated_at"])
    assert get_product(client, before["id"]) == after


def test_update_null_clears_optional_fields(client, create_product, update):
    product = create_product(description="描述", category="文具", location="A-01", max_quantity=9)
    body = {"description": None, "category": None, "location": None, "max_quantity": None}
    after = ok(update(product["id"], body))
    assert (after["description"], after["category"]) == (None, None)
    assert (after["stock"]["location"], after["stock"]["max_quantity"]) == (None, None)
    assert get_product(client, product["id"]) == after


def test_update_sets_stock_settings_but_never_the_count(client, create_product, update):
    product = create_product(initial_quantity=3)
    after = ok(update(product["id"], {"min_quantity": 5, "max_quantity": 10, "location": "B-02"}))
    assert after["stock"] == {"quantity": 3, "reserved": 0, "available": 3, "min_quantity": 5,
                              "max_quantity": 10, "location": "B-02", "is_low": True}
    assert len(product_logs(client, product["id"])) == 1


def test_update_every_product_field(client, create_product, update):
    product = create_product()
    body = {"name": "新名字", "sku": "NEW-SKU", "price": 0.5, "description": "新描述", "category": "新类"}
    after = ok(update(product["id"], body))
    assert {key: after[key] for key in body} == body


def test_update_sku_to_taken_sku_is_duplicate_and_changes_nothing(client, create_product, update):
    create_product(sku="TAKEN")
    product = create_product(sku="MINE")
    details = assert_error(update(product["id"], {"sku": "TAKEN", "name": "不应保存"}), 409, "DUPLICATE")
    assert details == {"sku": "TAKEN"}
    assert get_product(client, product["id"]) == product


def test_update_sku_to_its_own_sku_is_allowed(client, create_product, update):
    product = create_product(sku="MINE")
    assert ok(update(product["id"], {"sku": "MINE", "name": "改名"}))["sku"] == "MINE"


def test_update_unknown_product_is_not_found(client, update):
    assert_error(update(MISSING_ID, {"name": "x"}), 404, "NOT_FOUND")


# ---- delete ----

def delete(client, product_id: int):
    return ok(client.delete(product_url(product_id)))


def test_delete_answers_the_id(client, create_product):
    product = create_product()
    assert delete(client, product["id"]) == {"id": product["id"]}


def test_deleted_product_disappears_from_reads(client, create_product):
    keep = create_product(category="文具", min_quantity=5)
    doomed = create_product(category="玩具", min_quantity=5)
    delete(client, doomed["id"])

    assert_error(client.get(product_url(doomed["id"])), 404, "NOT_FOUND")
    assert_error(client.get(f"/api/stock/product/{doomed['id']}"), 404, "NOT_FOUND")
    assert listed_ids(client) == [keep["id"]]
    assert listed_ids(client, "/api/stock/") == [keep["id"]]
    assert listed_ids(client, "/api/stock/low-stock") == [keep["id"]]
    categories = ok(client.get("/api/products/categories"))
    assert [c["category"] for c in categories] == ["文具"]


def test_deleted_product_history_stays_queryable(client, create_product):
    product = create_product(initial_quantity=5)
    ok(client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 2}))
    history = product_logs(client, product["id"])
    delete(client, product["id"])

    assert product_logs(client, product["id"]) == history
    by_filter = ok(client.get("/api/logs/", query_string={"product_id": product["id"]}))["items"]
    assert by_filter == history
    assert ok(client.get(f"/api/logs/{history[0]['id']}")) == history[0]
    assert {log["sku"] for log in history} == {product["sku"]}


def test_deleted_product_sku_is_reusable(client, create_product):
    old = create_product(sku="REUSE-ME", initial_quantity=1)
    delete(client, old["id"])
    new = create_product(sku="REUSE-ME")
    assert new["id"] != old["id"]
    assert new["stock"]["quantity"] == 0
    assert product_logs(client, new["id"]) == []
    assert [log["sku"] for log in product_logs(client, old["id"])] == ["REUSE-ME"]


@pytest.mark.parametrize("action", ["add", "reduce", "adjust"])
def test_stock_writes_to_deleted_product_are_not_found(client, create_product, action):
    product = create_product(initial_quantity=5)
    delete(client, product["id"])
    response = client.post(f"/api/stock/{action}", json={"product_id": product["id"], "quantity": 1})
    assert_error(response, 404, "NOT_FOUND")
    assert len(product_logs(client, product["id"])) == 1


def test_deleted_product_cannot_be_updated_or_deleted_again(client, create_product):
    product = create_product()
    delete(client, product["id"])
    assert_error(client.put(product_url(product["id"]), json={"name": "x"}), 404, "NOT_FOUND")
    assert_error(client.delete(product_url(product["id"])), 404, "NOT_FOUND")


def test_delete_unknown_product_is_not_found(client):
    assert_error(client.delete(product_url(MISSING_ID)), 404, "NOT_FOUND")


# ---- categories ----

def test_categories_count_live_products(client, create_product):
    create_product(category="文具")
    create_product(category="文具")
    create_product(category="食品")
    create_product()
    delete(client, create_product(category="玩具")["id"])

    categories = ok(client.get("/api/products/categories"))
    assert {c["category"]: c["product_count"] for c in categories} == {"文具": 2, "食品": 1}


def test_categories_empty_when_no_products(client):
    assert ok(client.get("/api/products/categories")) == []
