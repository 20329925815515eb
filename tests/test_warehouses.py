"""Warehouses and transfers (SPEC §8): levels per warehouse under the product's total,
transfers as two chained ledger rows, and `verify` proving levels and pairs."""
import pytest
from sqlalchemy import text

from db import db
from tests.helpers import MISSING_ID, assert_error, ok, sorted_statements


def default_id(client) -> int:
    return next(w["id"] for w in ok(client.get("/api/warehouses/"))["items"] if w["is_default"])


def new_warehouse(client, code: str, **fields) -> dict:
    return ok(client.post("/api/warehouses/", json={"code": code, "name": f"{code}仓", **fields}), 201)


def move(client, action: str, **body) -> dict:
    return ok(client.post(f"/api/stock/{action}", json=body))


def levels_of(client, product_id: int) -> dict[int, int]:
    stock = ok(client.get(f"/api/stock/product/{product_id}"))
    return {level["warehouse_id"]: level["quantity"] for level in stock["levels"]}


def verify(client, **query) -> dict:
    return ok(client.get("/api/logs/verify", query_string=query))


@pytest.fixture
def two(client, create_product):
    """A product with 10 in the default warehouse and a second, empty warehouse."""
    product = create_product(initial_quantity=10)
    return {"product": product["id"], "default": default_id(client), "other": new_warehouse(client, "WH-2")["id"]}


def test_a_fresh_database_has_one_default_warehouse(client):
    items = ok(client.get("/api/warehouses/"))["items"]
    assert [(w["code"], w["name"], w["is_default"]) for w in items] == [("DEFAULT", "默认仓库", True)]


def test_a_new_product_is_kept_in_the_default_warehouse(client, create_product):
    product = create_product(initial_quantity=7)
    stock = ok(client.get(f"/api/stock/product/{product['id']}"))
    assert stock["quantity"] == 7
    assert stock["levels"] == [{"warehouse_id": default_id(client), "warehouse_code": "DEFAULT", "quantity": 7,
                                "reserved": 0, "available": 7, "min_quantity": 0, "max_quantity": None,
                                "location": None, "is_low": False}]
    log = ok(client.get(f"/api/logs/product/{product['id']}"))["items"][0]
    assert (log["warehouse_code"], log["level_before"], log["level_after"], log["transfer_id"]) == ("DEFAULT", 0, 7, None)


def test_receive_into_a_warehouse_then_transfer_between_them(client, two):
    product, default, other = two["product"], two["default"], two["other"]
    received = move(client, "add", product_id=product, quantity=5, warehouse_id=other, reason="采购入库")
    assert received["stock"]["quantity"] == 15
    assert (received["log"]["warehouse_id"], received["log"]["level_before"], received["log"]["level_after"]) == (
        other, 0, 5)
    answer = move(client, "transfer", product_id=product, from_warehouse_id=default, to_warehouse_id=other,
                  quantity=4, reason="门店补货", operator="张三")
    assert (answer["from"]["warehouse_id"], answer["from"]["quantity"]) == (default, 6)
    assert (answer["to"]["warehouse_id"], answer["to"]["quantity"]) == (other, 9)
    out_row, in_row = answer["logs"]
    assert (out_row["action"], in_row["action"]) == ("transfer_out", "transfer_in")
    assert out_row["transfer_id"] == in_row["transfer_id"] == answer["transfer_id"]
    assert out_row["before_quantity"] == out_row["after_quantity"] == in_row["after_quantity"] == 15
    assert (out_row["level_before"], out_row["level_after"], in_row["level_before"], in_row["level_after"]) == (10, 6, 5, 9)
    assert in_row["seq"] == out_row["seq"] + 1 and in_row["prev_hash"] == out_row["hash"]
    assert levels_of(client, product) == {default: 6, other: 9}
    assert ok(client.get(f"/api/stock/product/{product}"))["quantity"] == 15
    pair = ok(client.get("/api/logs/", query_string={"transfer_id": answer["transfer_id"]}))["items"]
    assert [row["action"] for row in pair] == ["transfer_in", "transfer_out"]
    here = ok(client.get("/api/logs/", query_string={"warehouse_id": other}))["items"]
    assert [row["action"] for row in here] == ["transfer_in", "in"]
    assert verify(client)["problems"] == []


def test_a_reduction_beyond_the_level_is_refused_even_when_the_total_would_cover_it(client, two):
    product, default, other = two["product"], two["default"], two["other"]
    move(client, "add", product_id=product, quantity=3, warehouse_id=other)
    details = assert_error(client.post("/api/stock/reduce", json={
        "product_id": product, "quantity": 4, "warehouse_id": other}), 409, "INSUFFICIENT_STOCK")
    assert (details["warehouse_id"], details["available"], details["requested"]) == (other, 3, 4)
    details = assert_error(client.post("/api/stock/transfer", json={
        "product_id": product, "from_warehouse_id": other, "to_warehouse_id": default, "quantity": 4}),
        409, "INSUFFICIENT_STOCK")
    assert details["warehouse_id"] == other
    assert levels_of(client, product) == {default: 10, other: 3}
    assert len(ok(client.get(f"/api/logs/product/{product}"))["items"]) == 2


def test_a_write_without_a_warehouse_acts_on_the_default_one(client, two):
    product, default, other = two["product"], two["default"], two["other"]
    move(client, "add", product_id=product, quantity=5, warehouse_id=other)
    reduced = move(client, "reduce", product_id=product, quantity=10)
    assert (reduced["stock"]["quantity"], reduced["log"]["warehouse_id"]) == (5, default)
    assert_error(client.post("/api/stock/reduce", json={"product_id": product, "quantity": 1}), 409,
                 "INSUFFICIENT_STOCK")
    ok(client.patch(f"/api/warehouses/{other}", json={"is_default": True}))
    assert move(client, "reduce", product_id=product, quantity=5)["log"]["warehouse_id"] == other
    assert ok(client.get(f"/api/warehouses/{default}"))["is_default"] is False


def test_adjust_counts_the_level_and_expected_quantity_is_the_levels(client, two):
    product, default, other = two["product"], two["default"], two["other"]
    move(client, "add", product_id=product, quantity=5, warehouse_id=other)
    details = assert_error(client.post("/api/stock/adjust", json={
        "product_id": product, "quantity": 2, "warehouse_id": other, "expected_quantity": 15}), 409, "CONFLICT")
    assert details["current_quantity"] == 5
    adjusted = move(client, "adjust", product_id=product, quantity=2, warehouse_id=other, expected_quantity=5,
                    min_quantity=3, location="B区-02")
    assert (adjusted["log"]["quantity"], adjusted["stock"]["quantity"]) == (-3, 12)
    level = next(lv for lv in ok(client.get(f"/api/stock/product/{product}"))["levels"] if lv["warehouse_id"] == other)
    assert (level["quantity"], level["min_quantity"], level["location"], level["is_low"]) == (2, 3, "B区-02", True)
    low = ok(client.get("/api/stock/low-stock", query_string={"warehouse_id": other}))["items"]
    assert [(row["product_id"], row["quantity"]) for row in low] == [(product, 2)]
    assert ok(client.get("/api/stock/low-stock", query_string={"warehouse_id": default}))["items"] == []
    assert ok(client.get("/api/stock/low-stock"))["items"] == []  # the product's own minimum is unset
    assert verify(client)["problems"] == []


def test_bad_transfers_change_nothing(client, two):
    product, default = two["product"], two["default"]
    base = {"product_id": product, "from_warehouse_id": default, "quantity": 1}
    assert_error(client.post("/api/stock/transfer", json={**base, "to_warehouse_id": default}), 400, "VALIDATION_ERROR")
    assert_error(client.post("/api/stock/transfer", json={**base, "to_warehouse_id": MISSING_ID}), 404, "NOT_FOUND")
    assert_error(client.post("/api/stock/add", json={"product_id": product, "quantity": 1, "warehouse_id": MISSING_ID}),
                 404, "NOT_FOUND")
    assert_error(client.post("/api/stock/transfer", json={**base, "to_warehouse_id": two["other"],
                                                           "expected_quantity": 9}), 409, "CONFLICT")
    assert levels_of(client, product) == {default: 10}
    assert len(ok(client.get(f"/api/logs/product/{product}"))["items"]) == 1


def test_batches_move_levels_and_transfer_all_or_nothing(client, two):
    product, default, other = two["product"], two["default"], two["other"]
    changes = [
        {"action": "add", "product_id": product, "quantity": 5, "warehouse_id": other},
        {"action": "transfer", "product_id": product, "from_warehouse_id": other, "to_warehouse_id": default,
         "quantity": 2},
        {"action": "reduce", "product_id": product, "quantity": 1},
    ]
    results = ok(client.post("/api/stock/batch", json={"changes": changes}))["results"]
    assert results[1]["transfer"]["to"]["quantity"] == 12 and results[1]["log"]["action"] == "transfer_out"
    assert results[2]["stock"]["quantity"] == 14
    assert levels_of(client, product) == {default: 11, other: 3}
    failing = [*changes[:1], {**changes[1], "quantity": 9}]
    details = assert_error(client.post("/api/stock/batch", json={"changes": failing}), 409, "INSUFFICIENT_STOCK")
    assert details["index"] == 1
    unknown = [changes[0], {**changes[2], "warehouse_id": MISSING_ID}]
    assert assert_error(client.post("/api/stock/batch", json={"changes": unknown}), 404, "NOT_FOUND")["index"] == 1
    assert levels_of(client, product) == {default: 11, other: 3}
    assert verify(client)["problems"] == []


def test_warehouse_crud_default_mark_and_conflicts(client, create_product):
    created = new_warehouse(client, "SH-01", name="上海一号仓", address="上海市浦东新区")
    assert (created["code"], created["name"], created["address"], created["is_default"]) == (
        "SH-01", "上海一号仓", "上海市浦东新区", False)
    assert (created["total_quantity"], created["products"]) == (0, 0)
    assert_error(client.post("/api/warehouses/", json={"code": "SH-01", "name": "重复"}), 409, "DUPLICATE")
    assert_error(client.post("/api/warehouses/", json={"code": "有 空格", "name": "x"}), 400, "VALIDATION_ERROR")
    assert_error(client.patch(f"/api/warehouses/{created['id']}", json={}), 400, "VALIDATION_ERROR")
    renamed = ok(client.put(f"/api/warehouses/{created['id']}", json={"name": "上海中心仓"}))
    assert renamed["name"] == "上海中心仓"
    default = default_id(client)
    assert_error(client.patch(f"/api/warehouses/{default}", json={"is_default": False}), 409, "CONFLICT")
    assert_error(client.delete(f"/api/warehouses/{default}"), 409, "CONFLICT")
    product = create_product()
    move(client, "add", product_id=product["id"], quantity=4, warehouse_id=created["id"])
    held = ok(client.get(f"/api/warehouses/{created['id']}"))
    assert (held["total_quantity"], held["products"]) == (4, 1)
    assert assert_error(client.delete(f"/api/warehouses/{created['id']}"), 409, "CONFLICT")["total_quantity"] == 4
    move(client, "transfer", product_id=product["id"], from_warehouse_id=created["id"], to_warehouse_id=default,
         quantity=4)
    ok(client.delete(f"/api/warehouses/{created['id']}"))
    assert_error(client.get(f"/api/warehouses/{created['id']}"), 404, "NOT_FOUND")
    assert new_warehouse(client, "SH-01")["code"] == "SH-01"  # the code is free again
    logs = ok(client.get("/api/logs/", query_string={"warehouse_id": created["id"]}))["items"]
    assert {row["warehouse_code"] for row in logs} == {"SH-01"}  # the ledger keeps the old code
    marked = new_warehouse(client, "BJ-01", is_default=True)
    assert [w["id"] for w in ok(client.get("/api/warehouses/"))["items"] if w["is_default"]] == [marked["id"]]


def test_one_warehouses_stock_pages_with_filters_sorts_and_cursors(client, create_product):
    warehouse = new_warehouse(client, "WH-LIST")["id"]
    ids = []
    for index in range(5):
        product = create_product(name=f"商品{index}", category="饮料" if index % 2 else "食品")
        move(client, "add", product_id=product["id"], quantity=10 - index, warehouse_id=warehouse)
        ids.append(product["id"])
    create_product(initial_quantity=3)  # in the default warehouse only
    path = f"/api/warehouses/{warehouse}/stock"
    everything = ok(client.get(path))
    assert [row["product_id"] for row in everything["items"]] == ids
    assert everything["items"][0]["warehouse_code"] == "WH-LIST" and everything["items"][0]["product"]["name"] == "商品0"
    by_quantity = ok(client.get(path, query_string={"sort": "quantity", "per_page": 2}))
    assert [row["quantity"] for row in by_quantity["items"]] == [6, 7]
    following = ok(client.get(path, query_string={"sort": "quantity", "per_page": 2,
                                                  "after": by_quantity["pagination"]["next_after"]}))
    assert [row["quantity"] for row in following["items"]] == [8, 9]
    drinks = ok(client.get(path, query_string={"category": "饮料", "sort": "-name"}))
    assert [row["product"]["name"] for row in drinks["items"]] == ["商品3", "商品1"]
    assert drinks["pagination"]["total"] == 2
    assert_error(client.get(f"/api/warehouses/{MISSING_ID}/stock"), 404, "NOT_FOUND")


def test_a_page_by_name_stays_right_when_the_product_count_is_off(app, client, create_product):
    """By name or SKU within a category, a warehouse whose level count there equals the
    category's running count lists the category's own index. A count edited by hand (or
    not yet recounted) can make that equality wrong: the page still lists this
    warehouse's levels."""
    warehouse = new_warehouse(client, "WH-COUNT")["id"]
    held = [create_product(name=f"计数{index}", category="计数")["id"] for index in range(2)]
    for product_id in held:
        move(client, "add", product_id=product_id, quantity=1, warehouse_id=warehouse)
    create_product(name="计数9", category="计数")  # none in WH-COUNT: three live products, two levels there
    with app.app_context():
        shard = db.session.scalar(text("SELECT shard FROM product_counts WHERE category = '计数' AND live > 0"))
        db.session.execute(text("UPDATE product_counts SET live = live - 1 WHERE category = '计数' AND shard = :shard"),
                           {"shard": shard})
        db.session.commit()
    for sort in ("name", "-sku"):
        page = ok(client.get(f"/api/warehouses/{warehouse}/stock", query_string={"sort": sort, "category": "计数"}))
        assert sorted(row["product_id"] for row in page["items"]) == held and page["pagination"]["total"] == 2


LEVEL_SORTS = ["product_id", "name", "sku", "quantity", "min_quantity", "updated_at"]


@pytest.mark.parametrize("query", [
    *({"sort": f"{sign}{sort}"} for sort in LEVEL_SORTS for sign in ("", "-")),
    # Low rows by name or SKU are few: those alone are read and sorted.
    *({"sort": f"{sign}{sort}", "low_only": "true"} for sort in LEVEL_SORTS[3:] for sign in ("", "-")),
], ids=lambda query: "&".join(f"{key}={value}" for key, value in query.items()))
def test_a_warehouses_page_in_any_sort_walks_an_index_without_sorting(app, client, two, create_product, query):
    """A middle page reads its rows in order off one index, never sorting the whole
    warehouse: its plan has no temporary B-tree (SQLite) and no filesort (MariaDB)."""
    for index in range(6):
        product = create_product(name=f"商品{index % 3}", initial_quantity=1)["id"]  # some only in the default
        if index % 2:
            move(client, "adjust", product_id=product, warehouse_id=two["other"], quantity=index, min_quantity=9)
    with app.app_context():
        with sorted_statements() as statements:
            page = ok(client.get(f"/api/warehouses/{two['other']}/stock", query_string={**query, "per_page": 1,
                                                                                        "page": 2}))
        assert len(page["items"]) == 1 and page["pagination"]["total"] == 3
        (statement, parameters), = statements
        sqlite = db.engine.dialect.name == "sqlite"
        explained = db.session.connection().exec_driver_sql(
            f"EXPLAIN {'QUERY PLAN ' if sqlite else ''}{statement}", parameters).mappings().all()
    sorting = [step for step in explained
               if ("TEMP B-TREE" in step["detail"] if sqlite else "filesort" in (step["Extra"] or ""))]
    assert not sorting, explained


def test_as_of_reads_a_levels_past(client, two):
    product, default, other = two["product"], two["default"], two["other"]
    move(client, "transfer", product_id=product, from_warehouse_id=default, to_warehouse_id=other, quantity=4)
    move(client, "reduce", product_id=product, quantity=1, warehouse_id=other)
    point = ok(client.get(f"/api/stock/product/{product}", query_string={"as_of_seq": 3, "warehouse_id": other}))
    assert (point["quantity"], point["seq"], point["warehouse_id"]) == (4, 3, other)
    assert ok(client.get(f"/api/stock/product/{product}", query_string={"as_of_seq": 3}))["quantity"] == 10
    now = ok(client.get(f"/api/stock/product/{product}", query_string={"as_of": "2999-01-01", "warehouse_id": other}))
    assert (now["quantity"], now["seq"]) == (3, 4)
    never = ok(client.get(f"/api/stock/product/{product}", query_string={"as_of_seq": 1, "warehouse_id": other}))
    assert (never["quantity"], never["seq"]) == (0, 0)


def test_statistics_keep_transfers_out_of_the_totals_in_and_out(client, two):
    move(client, "transfer", product_id=two["product"], from_warehouse_id=two["default"],
         to_warehouse_id=two["other"], quantity=4)
    for query in ({}, {"product_id": two["product"]}):
        stats = ok(client.get("/api/logs/statistics", query_string=query))
        assert (stats["total_in"], stats["total_out"], stats["net_change"], stats["total_logs"]) == (10, 0, 10, 3)
        assert stats["by_action"]["transfer_out"] == stats["by_action"]["transfer_in"] == {"count": 1, "quantity": 4}
        assert stats["top_products"][0]["units_moved"] == 10
        assert [(day["in"], day["out"], day["adjust"]) for day in stats["daily"]] == [(10, 0, 0)]


@pytest.mark.parametrize("tamper, found", [
    ("UPDATE stock_levels SET quantity = quantity + 1 WHERE warehouse_id = :other", "仓库"),
    ("UPDATE stock_logs SET level_after = level_after + 1 WHERE action = 'transfer_in'", "hash"),
    ("DELETE FROM stock_logs WHERE action = 'transfer_in'", "调拨"),
    ("UPDATE stock_logs SET transfer_id = 'ffff' WHERE action = 'transfer_in'", "调拨"),
])
def test_verify_finds_a_tampered_level_or_an_unpaired_transfer(app, client, two, tamper, found):
    move(client, "transfer", product_id=two["product"], from_warehouse_id=two["default"],
         to_warehouse_id=two["other"], quantity=4)
    assert verify(client)["problems"] == []
    with app.app_context():
        db.session.execute(text(tamper), {"other": two["other"]})
        db.session.commit()
    problems = verify(client, product_id=two["product"])["problems"]
    assert any(found in problem["problem"] for problem in problems), problems


def test_the_hash_version_is_part_of_a_rows_hash(app, client, create_product):
    """A row cannot be passed off as one from before warehouses (version 1, whose hash
    leaves the warehouse fields out): that changes its hash."""
    create_product(initial_quantity=2)
    with app.app_context():
        db.session.execute(text("UPDATE stock_logs SET hash_version = 1"))
        db.session.commit()
    assert any("hash" in problem["problem"] for problem in verify(client)["problems"])


def test_verify_reads_levels_and_rows_in_chunks_of_any_size(app, client, create_product, monkeypatch):
    """Keyset chunks of one row: every level and ledger row is still checked once, and a
    tampered level on a later chunk is still found."""
    from services import ledger_service
    other = new_warehouse(client, "WH-C")["id"]
    products = [create_product(initial_quantity=5)["id"] for _ in range(3)]
    for product in products:
        move(client, "transfer", product_id=product, from_warehouse_id=default_id(client), to_warehouse_id=other,
             quantity=2)
    whole = verify(client)
    monkeypatch.setattr(ledger_service, "CHUNK_ROWS", 1)
    assert verify(client) == whole and whole["problems"] == [] and whole["logs_checked"] == 9
    with app.app_context():
        db.session.execute(text("UPDATE stock_levels SET quantity = 9 WHERE product_id = :last AND warehouse_id = :other"),
                           {"last": products[-1], "other": other})
        db.session.commit()
    assert {problem["product_id"] for problem in verify(client)["problems"]} == {products[-1]}
