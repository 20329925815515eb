"""A warehouse's live levels, counted in `level_counts` by every path that makes a level
or deletes one (with its product): its stock list's total, read from those counts, is
always the plain COUNT of its live levels. Every path that makes a level or renames a
product also keeps the copies of the product's name and SKU on its levels, which a
warehouse's list by name or SKU is read in the order of."""
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from db import db
from tests.helpers import assert_error, ok
from tests.test_import_export import csv_bytes, send
from tests.test_warehouses import default_id, move, new_warehouse


def assert_counted(app, client) -> dict[int, int]:
    """Each live warehouse's page total, its level counts' sum and a COUNT of its live
    levels agree, and every live level has its product's name and SKU; answers the totals."""
    with app.app_context():
        stale = db.session.execute(text(
            "SELECT l.product_id, l.warehouse_id FROM stock_levels l JOIN products p ON p.id = l.product_id"
            " WHERE l.deleted_at IS NULL AND (l.name <> p.name OR l.sku <> p.sku OR l.sku IS NULL)")).all()
        db.session.remove()
    assert stale == []
    totals = {}
    for warehouse in ok(client.get("/api/warehouses/"))["items"]:
        total = ok(client.get(f"/api/warehouses/{warehouse['id']}/stock", query_string={"per_page": 1}))
        with app.app_context():
            counted = db.session.scalar(text(
                "SELECT COUNT(*) FROM stock_levels WHERE warehouse_id = :w AND deleted_at IS NULL"),
                {"w": warehouse["id"]})
            kept = db.session.scalar(text("SELECT COALESCE(SUM(live), 0) FROM level_counts WHERE warehouse_id = :w"),
                                     {"w": warehouse["id"]})
            db.session.remove()
        assert total["pagination"]["total"] == counted == kept, warehouse["code"]
        totals[warehouse["id"]] = counted
    return totals


def test_products_created_and_moved_into_new_warehouses_are_counted(app, client, create_product):
    products = [create_product(initial_quantity=5)["id"] for _ in range(3)]
    east, west = new_warehouse(client, "WH-E")["id"], new_warehouse(client, "WH-W")["id"]
    move(client, "add", product_id=products[0], quantity=2, warehouse_id=east)
    move(client, "add", product_id=products[0], quantity=1, warehouse_id=east)  # the level is there already
    move(client, "transfer", product_id=products[1], from_warehouse_id=default_id(client), to_warehouse_id=west,
         quantity=3)
    move(client, "adjust", product_id=products[2], quantity=4, warehouse_id=west)
    assert assert_counted(app, client) == {default_id(client): 3, east: 1, west: 2}


def test_a_batch_counts_the_levels_it_makes_and_a_dry_or_refused_one_none(app, client, create_product):
    products = [create_product(initial_quantity=5)["id"] for _ in range(3)]
    east, west = new_warehouse(client, "WH-E")["id"], new_warehouse(client, "WH-W")["id"]
    changes = [{"action": "add", "product_id": products[2], "quantity": 1, "warehouse_id": east},
               {"action": "transfer", "product_id": products[0], "from_warehouse_id": default_id(client),
                "to_warehouse_id": west, "quantity": 1},
               {"action": "adjust", "product_id": products[1], "quantity": 2, "warehouse_id": west},
               {"action": "add", "product_id": products[0], "quantity": 1, "warehouse_id": east}]
    ok(client.post("/api/stock/batch", json={"changes": changes, "dry_run": True}))
    refused = [*changes, {"action": "reduce", "product_id": products[1], "quantity": 99}]
    assert_error(client.post("/api/stock/batch", json={"changes": refused}), 409, "INSUFFICIENT_STOCK")
    assert assert_counted(app, client) == {default_id(client): 3, east: 0, west: 0}
    ok(client.post("/api/stock/batch", json={"changes": changes}))
    assert assert_counted(app, client) == {default_id(client): 3, east: 2, west: 2}


def test_a_refused_hold_in_a_new_warehouse_leaves_no_level_counted(app, client, create_product):
    product = create_product(initial_quantity=5)["id"]
    east = new_warehouse(client, "WH-E")["id"]
    refused = client.post("/api/reservations/", json={"product_id": product, "warehouse_id": east, "quantity": 1})
    assert_error(refused, 409, "INSUFFICIENT_STOCK")
    assert assert_counted(app, client) == {default_id(client): 1, east: 0}


def test_an_import_counts_the_levels_its_counts_make(app, client, create_product):
    create_product(sku="C-1", initial_quantity=6)
    shanghai = new_warehouse(client, "SH")["id"]
    body = csv_bytes([["sku", "name", "price", "warehouse", "quantity"],
                      ["C-1", "测试商品", "19.99", "DEFAULT", "4"], ["C-1", "测试商品", "19.99", "SH", "2"],
                      ["C-2", "新品", "3", "SH", "0"], ["C-3", "新品", "3", "", "9"], ["C-4", "新品", "3", "", ""]])
    ok(send(client, body))
    # C-2 counted at 0 and C-4 without a count have no level; C-3's is made by its count.
    assert assert_counted(app, client) == {default_id(client): 2, shanghai: 1}


def test_deleting_a_product_uncounts_its_levels_in_every_warehouse(app, client, create_product):
    products = [create_product(initial_quantity=5)["id"] for _ in range(2)]
    east = new_warehouse(client, "WH-E")["id"]
    for product in products:
        move(client, "add", product_id=product, quantity=1, warehouse_id=east)
    ok(client.delete(f"/api/products/{products[0]}"))
    assert assert_counted(app, client) == {default_id(client): 1, east: 1}


def test_seeded_levels_are_counted(app, client, runner):
    result = runner.invoke(args=["seed", "--products", "40", "--movements", "400", "--warehouses", "3",
                                 "--random-seed", "7"])
    assert result.exit_code == 0, result.output
    totals = assert_counted(app, client)
    assert totals[default_id(client)] == 40 and 0 < min(totals.values())


def test_recount_rebuilds_level_counts_and_copies_changed_behind_the_services_back(app, client, runner,
                                                                                 create_product):
    for _ in range(3):
        create_product()
    with app.app_context():  # as a level made by an instance from before the copies would be
        db.session.execute(text("UPDATE level_counts SET live = live + 5"))
        db.session.execute(text("UPDATE stock_levels SET name = '', sku = NULL"))
        db.session.commit()
    result = runner.invoke(args=["products", "recount"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"": 3}
    assert f'live levels per warehouse: {{"{default_id(client)}": 3}}' in result.stderr
    assert assert_counted(app, client) == {default_id(client): 3}


def test_levels_made_at_once_in_crossing_orders_never_deadlock(app, client, create_product, retries):
    """Batches making levels of many products in several warehouses, in every order at
    once: their counter rows are written in one order, so none waits on another in a
    cycle."""
    products = [create_product()["id"] for _ in range(24)]
    warehouses = [new_warehouse(client, f"WH-{index}")["id"] for index in range(3)]
    pairs = [(product, warehouse) for product in products for warehouse in warehouses]
    random.Random(7).shuffle(pairs)
    threads = 6
    barrier = threading.Barrier(threads)

    def worker(index: int) -> list[int]:
        own = app.test_client()
        barrier.wait()
        mine = pairs[index::threads]
        return [own.post("/api/stock/batch", json={"changes": [
            {"action": "add", "product_id": product, "quantity": 1, "warehouse_id": warehouse}
            for product, warehouse in mine[start:start + 4]]}).status_code for start in range(0, len(mine), 4)]

    with ThreadPoolExecutor(threads) as pool:
        statuses = [status for result in pool.map(worker, range(threads)) for status in result]
    assert set(statuses) == {200}
    assert retries == []
    assert assert_counted(app, client) == {default_id(client): 24, **dict.fromkeys(warehouses, 24)}


def test_a_renamed_product_is_listed_by_its_new_name_and_sku_in_every_warehouse(app, client, create_product):
    tea, rice = (create_product(name=name, sku=sku, initial_quantity=2)["id"] for name, sku in (("乙茶", "A-1"), ("丙米", "B-1")))
    east = new_warehouse(client, "WH-E")["id"]
    for product in (tea, rice):
        move(client, "add", product_id=product, quantity=1, warehouse_id=east)

    def listed(sort: str) -> dict[int, list[int]]:
        return {warehouse: [row["product_id"] for row in ok(client.get(
            f"/api/warehouses/{warehouse}/stock", query_string={"sort": sort}))["items"]]
            for warehouse in (default_id(client), east)}

    ok(client.patch(f"/api/products/{tea}", json={"name": "一茶", "sku": "Z-1"}))
    assert listed("name") == dict.fromkeys(listed("name"), [tea, rice])
    assert listed("sku") == dict.fromkeys(listed("sku"), [rice, tea])
    ok(send(client, csv_bytes([["sku", "name", "price"], ["B-1", "一一米", "19.99"]])))
    assert listed("name") == dict.fromkeys(listed("name"), [rice, tea])
    assert_counted(app, client)
