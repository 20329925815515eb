"""Statistics over any range, read from the per-day running totals for whole days and
from the ledger for the partial days at the edges, equal a plain aggregation of the
ledger's rows, for every product and for one."""
import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy import event

from db import db
from services import top_products
from services.log_service import time_filters
from services.transaction import begin_snapshot
from tests.helpers import ok

DAILY = ("in", "out", "adjust")
TRANSFER_ACTIONS = ("transfer_out", "transfer_in")
ACTIONS = DAILY + TRANSFER_ACTIONS
RANGES = 40


@pytest.fixture
def history(client, runner):
    """90 days of movements over 30 products in three warehouses (a few a day, transfers
    among them), two products deleted since; every ledger row, and the products' names."""
    result = runner.invoke(args=["seed", "--products", "30", "--movements", "900", "--random-seed", "11",
                                 "--warehouses", "3"])
    assert result.exit_code == 0, result.output
    products = {item["id"]: item for item in ok(client.get("/api/products/?per_page=100"))["items"]}
    for gone in list(products)[:2]:
        ok(client.delete(f"/api/products/{gone}"))
    return _ledger(client, products, deleted=list(products)[:2])


def _ledger(client, products: dict, deleted: list) -> dict:
    """Every ledger row, newest first, with its instant; the products' names and the
    SKUs of those not `deleted`."""
    rows, older = [], ""
    while older is not None:
        page = ok(client.get(f"/api/logs/?per_page=100{older and f'&before_id={older}'}"))
        rows += page["items"]
        older = page["pagination"]["next_before_id"]
    for row in rows:
        row["at"] = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
    return {"rows": rows, "names": {pid: item["name"] for pid, item in products.items()},
            "skus": {pid: item["sku"] for pid, item in products.items() if pid not in deleted}}


def _bounds(start: date | datetime | None, end: date | datetime | None):
    """As the contract reads a range: `start` inclusive, `end` inclusive, a date-only
    `end` covering that whole day."""
    lower = start if isinstance(start, datetime) or start is None else datetime.combine(start, time.min, timezone.utc)
    def inside(at: datetime) -> bool:
        if lower is not None and at < lower:
            return False
        if isinstance(end, datetime):
            return at <= end
        return end is None or at.date() <= end
    return inside


def expected(history: dict, start=None, end=None, product_id: int | None = None) -> dict:
    """The statistics of the rows in the range, added up one by one."""
    inside = _bounds(start, end)
    rows = [row for row in history["rows"] if inside(row["at"]) and product_id in (None, row["product_id"])]
    by_action = {action: {"count": 0, "quantity": 0} for action in ACTIONS}
    daily: dict[str, dict] = {}
    products: dict[int, dict] = defaultdict(lambda: {"movements": 0, "total_in": 0, "total_out": 0, "units_moved": 0})
    for row in rows:
        by_action[row["action"]]["count"] += 1
        by_action[row["action"]]["quantity"] += row["quantity"]
        day = daily.setdefault(row["at"].date().isoformat(), {"date": row["at"].date().isoformat(), **dict.fromkeys(DAILY, 0)})
        totals = products[row["product_id"]]
        totals["movements"] += 1
        if row["action"] in TRANSFER_ACTIONS:  # between warehouses: no units in or out
            continue
        day[row["action"]] += row["quantity"]
        if row["action"] != "adjust":
            totals[f"total_{row['action']}"] += row["quantity"]
        totals["units_moved"] += abs(row["quantity"])
    top = sorted(products.items(), key=lambda item: (-item[1]["units_moved"], item[0]))[:10]
    unbounded = start is None and end is None and product_id is None
    return {
        "total_logs": len(rows),
        "total_in": by_action["in"]["quantity"],
        "total_out": by_action["out"]["quantity"],
        "net_change": by_action["in"]["quantity"] - by_action["out"]["quantity"] + by_action["adjust"]["quantity"],
        "by_action": by_action,
        "top_products": [{"product_id": pid, "name": history["names"][pid],
                          "sku": _sku(history, rows, pid, unbounded), **totals} for pid, totals in top],
        "daily": sorted(daily.values(), key=lambda entry: entry["date"]),
    }


def _sku(history: dict, rows: list, product_id: int, unbounded: bool) -> str:
    """A live product's SKU; a deleted one's from its movements: the last of all, or
    within a range the greatest."""
    if product_id in history["skus"]:
        return history["skus"][product_id]
    own = [row for row in (history["rows"] if unbounded else rows) if row["product_id"] == product_id]
    return max(own, key=lambda row: row["seq"])["sku"] if unbounded else max(row["sku"] for row in own)


def _instant(rng: random.Random, first: datetime, last: datetime) -> datetime:
    seconds = rng.uniform(0, (last - first).total_seconds())
    return first + timedelta(seconds=seconds, microseconds=rng.randrange(1_000_000))


def _random_ranges(history: dict, seed: int):
    """Ranges of every shape: instants to the microsecond (partial days at both ends),
    dates (whole days), one bound only, within one day, empty, reversed."""
    rng = random.Random(seed)
    first, last = history["rows"][-1]["at"] - timedelta(days=2), history["rows"][0]["at"] + timedelta(days=2)
    for _ in range(RANGES):
        start, end = sorted([_instant(rng, first, last), _instant(rng, first, last)])
        shape = rng.randrange(7)
        if shape == 1:
            start, end = start.date(), end.date()
        elif shape == 2:
            start, end = start.date(), end
        elif shape == 3:
            start, end = None, rng.choice([end, end.date()])
        elif shape == 4:
            start, end = rng.choice([start, start.date()]), None
        elif shape == 5:
            end = start + timedelta(hours=rng.uniform(0, 30))
        elif shape == 6:
            start, end = end, start
        yield start, end


def _query(start, end, product_id: int | None = None) -> dict:
    spelled = {"start_date": start, "end_date": end, "product_id": product_id}
    return {key: value.isoformat() if isinstance(value, date) else value
            for key, value in spelled.items() if value is not None}


def test_statistics_of_any_range_equal_an_aggregation_of_its_ledger_rows(client, history):
    assert ok(client.get("/api/logs/statistics")) == expected(history)
    for start, end in _random_ranges(history, seed=1):
        assert ok(client.get("/api/logs/statistics", query_string=_query(start, end))) == expected(history, start, end), (
            start, end)


def test_statistics_of_one_product_over_any_range_equal_its_ledger_rows(client, history):
    rng = random.Random(2)
    for start, end in _random_ranges(history, seed=3):
        product_id = rng.choice(list(history["names"]))
        answer = ok(client.get("/api/logs/statistics", query_string=_query(start, end, product_id)))
        assert answer == expected(history, start, end, product_id), (start, end, product_id)


@pytest.mark.parametrize("bounds", [
    ("2000-01-01T00:00:00Z", None), (None, "2999-12-31"), ("0001-01-01", "9999-12-31"),
    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"), ("9999-12-31T12:00:00Z", None),
    (None, "0001-01-01"), ("9999-12-31", "9999-12-31"),
])
def test_statistics_at_the_ends_of_time(client, history, bounds):
    start, end = (None if bound is None else bound for bound in bounds)
    parsed = [None if bound is None else (date.fromisoformat(bound) if len(bound) == 10
                                          else datetime.fromisoformat(bound.replace("Z", "+00:00"))) for bound in bounds]
    answer = ok(client.get("/api/logs/statistics", query_string={
        key: value for key, value in (("start_date", start), ("end_date", end)) if value is not None}))
    assert answer == expected(history, *parsed)


# ---- the busiest products of a range: summed inside it, or walked down the running totals ----

def both_ways(app, start, end) -> dict:
    """The busiest products of a range found both ways, each in a snapshot of its own."""
    answers = {}
    with app.app_context():
        inside = time_filters(start, end)
        for way, find in (("summed inside", lambda: top_products.summed_inside(inside)),
                          ("walked", lambda: top_products.walked(inside))):
            begin_snapshot()
            answers[way] = find()
            db.session.rollback()
    return answers


def _parts_of(history: dict) -> dict:
    """Ranges with partial days holding nearly all, about half, two fifths and little of the
    ledger (by time), and one of whole days."""
    first, last = history["rows"][-1]["at"], history["rows"][0]["at"]
    at = lambda share: first + (last - first) * share  # noqa: E731
    return {"nearly all": (at(0.01), at(0.99)), "about half": (at(0.25), at(0.75)), "two fifths": (at(0.45), at(0.85)),
            "little": (at(0.4), at(0.42)), "whole days": (at(0.05).date(), at(0.9).date()),
            "to the end": (at(0.3), None), "from the start": (None, at(0.7))}


def test_the_busiest_products_of_any_range_are_the_same_either_way(app, history):
    for name, (start, end) in _parts_of(history).items():
        wanted = expected(history, start, end)["top_products"]
        assert both_ways(app, start, end) == {"summed inside": wanted, "walked": wanted}, name


@pytest.fixture
def tied(client, create_product):
    """Twelve products that each move 5 units between two instants (one more moves 5 out
    as well, one transfers, one is deleted afterwards); before and after, the last two
    and two others move many more, so the running totals rank them first. The ledger,
    and the two instants."""
    products = {created["id"]: created for created in (create_product() for _ in range(12))}
    ids = list(products)
    second = ok(client.post("/api/warehouses/", json={"code": "WH-T", "name": "二号仓"}), 201)["id"]
    default = next(w["id"] for w in ok(client.get("/api/warehouses/"))["items"] if w["is_default"])
    move = lambda action, pid, quantity: ok(client.post(f"/api/stock/{action}", json={  # noqa: E731
        "product_id": pid, "quantity": quantity}))["log"]
    for pid in ids[-2:]:
        move("add", pid, 50)
    move("add", ids[0], 3)
    lower = datetime.fromisoformat(move("add", ids[0], 5)["created_at"].replace("Z", "+00:00"))
    for pid in ids[1:]:
        move("add", pid, 5)
    move("reduce", ids[2], 5)
    ok(client.post("/api/stock/transfer", json={"product_id": ids[1], "from_warehouse_id": default,
                                                "to_warehouse_id": second, "quantity": 2}))
    upper = datetime.fromisoformat(move("add", ids[4], 40)["created_at"].replace("Z", "+00:00"))
    move("add", ids[5], 40)
    ok(client.delete(f"/api/products/{ids[-1]}"))
    return {**_ledger(client, products, deleted=ids[-1:]), "lower": lower, "upper": upper - timedelta(microseconds=1)}


def test_ties_transfers_and_a_deleted_product_rank_alike_either_way(app, client, tied):
    lower, upper = tied["lower"], tied["upper"]
    for start, end in ((lower, upper), (lower, None), (None, upper), (lower + timedelta(microseconds=1), upper),
                       (lower, lower + (upper - lower) / 3)):
        wanted = expected(tied, start, end)
        assert both_ways(app, start, end) == {"summed inside": wanted["top_products"],
                                              "walked": wanted["top_products"]}, (start, end)
        assert ok(client.get("/api/logs/statistics", query_string=_query(start, end))) == wanted
    ranked = expected(tied, lower, upper)["top_products"]
    ids = list(tied["names"])
    # Five units each but one: ties broken by id, the busiest of all time left out, the
    # transfer moving no units, the deleted product named by its SKU then.
    assert [entry["product_id"] for entry in ranked] == [ids[2], *ids[:2], *ids[3:10]]
    assert ranked[2]["movements"] == 3 and ranked[2]["units_moved"] == 5


@pytest.fixture
def statements(app):
    """The SQL statements the app runs while the test does."""
    seen: list[str] = []
    with app.app_context():
        engine = db.engine
    record = lambda conn, cursor, statement, *args: seen.append(" ".join(statement.split()))  # noqa: E731
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(("part", "walked"), [("nearly all", True), ("little", False)])
def test_the_walk_goes_on_only_while_it_costs_less_than_the_sum(
        client, history, statements, monkeypatch, part, walked):
    # Steps this short weigh the walk within the thirty products of the history.
    monkeypatch.setattr(top_products, "FIRST_STEP", 4)
    monkeypatch.setattr(top_products, "LONGEST_STEP", 8)
    start, end = _parts_of(history)[part]
    assert ok(client.get("/api/logs/statistics", query_string=_query(start, end))) == expected(history, start, end)
    walks = any("FROM stock ORDER BY stock.units_moved DESC, stock.product_id LIMIT" in sql for sql in statements)
    sums = any("GROUP BY stock_logs.product_id ORDER BY moved DESC" in sql for sql in statements)
    assert (walks, sums) == (True, not walked)


def test_the_walk_hands_over_when_the_products_left_cost_more_than_the_rows(app, history, monkeypatch):
    monkeypatch.setattr(top_products, "FIRST_STEP", 4)
    start, end = _parts_of(history)["nearly all"]
    with app.app_context():
        begin_snapshot()
        assert top_products.walked(time_filters(start, end), rows=top_products.ROWS_PER_PRODUCT) is None
        assert top_products.walked(time_filters(start, end)) == expected(history, start, end)["top_products"]
