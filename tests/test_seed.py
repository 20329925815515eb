"""`flask --app main seed` fills a database with a consistent, verifiable history, in
one warehouse or spread over several with transfers between them."""
import json

import pytest
from sqlalchemy import text

from db import db
from tests.helpers import ok


def seed(runner, *args: str) -> dict:
    result = runner.invoke(args=["seed", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])


def query(app, sql: str) -> list[tuple]:
    with app.app_context():
        rows = [tuple(row) for row in db.session.execute(text(sql))]
        db.session.remove()
    return rows


def test_seed_writes_products_and_a_ledger_that_verifies(client, runner):
    summary = seed(runner, "--products", "25", "--movements", "600", "--random-seed", "7")
    assert (summary["products"], summary["movements"], summary["warehouses"]) == (25, 600, 1)

    assert client.get("/api/products/").get_json()["data"]["pagination"]["total"] == 25
    report = client.get("/api/logs/verify").get_json()["data"]
    assert (report["products_checked"], report["logs_checked"], report["problems"]) == (25, 600, [])


def test_seeded_history_is_oldest_first_so_ids_and_times_agree(client, runner):
    runner.invoke(args=["seed", "--products", "5", "--movements", "200", "--random-seed", "3"])
    logs = client.get("/api/logs/?per_page=100").get_json()["data"]["items"]
    times = [log["created_at"] for log in logs]  # newest first by id
    assert times == sorted(times, reverse=True)


def test_one_warehouse_keeps_every_level_equal_to_its_total(app, runner):
    seed(runner, "--products", "10", "--movements", "300", "--random-seed", "4")
    assert query(app, "SELECT code FROM warehouses") == [("DEFAULT",)]
    assert query(app, "SELECT COUNT(*) FROM stock_logs WHERE level_before = before_quantity"
                      " AND level_after = after_quantity AND transfer_id IS NULL") == [(300,)]
    assert query(app, "SELECT COUNT(*) FROM stock s JOIN stock_levels l ON l.product_id = s.product_id"
                      " WHERE l.quantity = s.quantity") == [(10,)]


@pytest.fixture
def three(app, runner):
    """40 products and 2,000 movements over the default warehouse, WH-02 and WH-03."""
    return seed(runner, "--products", "40", "--movements", "2000", "--random-seed", "11", "--warehouses", "3")


def test_several_warehouses_are_made_and_each_holds_stock(client, three):
    assert three["warehouses"] == 3
    warehouses = ok(client.get("/api/warehouses/"))["items"]
    assert [(w["code"], w["name"]) for w in warehouses] == [("DEFAULT", "默认仓库"), ("WH-02", "二号仓"),
                                                           ("WH-03", "三号仓")]
    assert all(w["total_quantity"] > 0 and w["products"] > 0 for w in warehouses)
    totals = ok(client.get("/api/stock/", query_string={"per_page": 100}))["items"]
    assert sum(w["total_quantity"] for w in warehouses) == sum(item["quantity"] for item in totals)


def test_levels_add_up_to_each_total_and_transfers_pair_up(app, client, three):
    for item in ok(client.get("/api/stock/", query_string={"per_page": 100}))["items"]:
        stock = ok(client.get(f"/api/stock/product/{item['product_id']}"))
        assert sum(level["quantity"] for level in stock["levels"]) == stock["quantity"]
    assert query(app, "SELECT COUNT(DISTINCT product_id) FROM stock_levels WHERE quantity > 0"
                      " AND warehouse_id <> (SELECT id FROM warehouses WHERE is_default)") == [(40,)]
    transfers = query(app, "SELECT transfer_id, COUNT(*), SUM(action = 'transfer_out'), MIN(quantity), MAX(quantity),"
                           " COUNT(DISTINCT warehouse_id), MAX(seq) - MIN(seq) FROM stock_logs"
                           " WHERE transfer_id IS NOT NULL GROUP BY transfer_id")
    assert len(transfers) > 20
    assert all(count == 2 and outs == 1 and low == high and places == 2 and apart == 1
               for _, count, outs, low, high, places, apart in transfers)
    assert query(app, "SELECT COUNT(*) FROM stock_logs WHERE action IN ('transfer_out', 'transfer_in')"
                      " AND before_quantity <> after_quantity") == [(0,)]


def test_a_seed_with_warehouses_verifies_clean(client, runner, three):
    report = ok(client.get("/api/logs/verify"))
    assert (report["products_checked"], report["logs_checked"], report["problems"]) == (40, 2000, [])
    verified = runner.invoke(args=["ledger", "verify", "--quiet"])
    assert verified.exit_code == 0, verified.output


def test_statistics_agree_with_the_ledger(app, client, three):
    stats = ok(client.get("/api/logs/statistics"))
    ledger = {action: {"count": count, "quantity": int(quantity)}
              for action, count, quantity in query(app, "SELECT action, COUNT(*), SUM(quantity) FROM stock_logs"
                                                        " GROUP BY action")}
    assert stats["by_action"] == ledger
    assert ledger["transfer_out"] == ledger["transfer_in"]
    assert (stats["total_logs"], stats["total_in"], stats["total_out"]) == (
        2000, ledger["in"]["quantity"], ledger["out"]["quantity"])
    busiest = query(app, "SELECT product_id, SUM(ABS(quantity)) FROM stock_logs WHERE transfer_id IS NULL"
                         " GROUP BY product_id ORDER BY 2 DESC, 1 LIMIT 10")
    assert [(entry["product_id"], entry["units_moved"]) for entry in stats["top_products"]] == [
        (product_id, int(moved)) for product_id, moved in busiest]
