"""The movement ledger (SPEC §3 "Logs", §4.3)."""
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from tests.helpers import LOG_FIELDS, MISSING_ID, assert_error, ok

LOGS = "/api/logs/"
STATISTICS = "/api/logs/statistics"


# ---- helpers ----





def change(client, action: str, product_id: int, quantity: int, **extra) -> dict:
    response = client.post(f"/api/stock/{action}", json={"product_id": product_id, "quantity": quantity, **extra})
    return ok(response)["log"]


def logs(client, **query) -> list[dict]:
    return ok(client.get(LOGS, query_string={"per_page": 100, **query}))["items"]


def log_ids(client, **query) -> list[int]:
    return [log["id"] for log in logs(client, **query)]


def product_logs(client, product_id: int, **query) -> dict:
    return ok(client.get(f"/api/logs/product/{product_id}", query_string=query))


def statistics(client, **query) -> dict:
    return ok(client.get(STATISTICS, query_string=query))


def day_of(log: dict) -> date:
    return datetime.fromisoformat(log["created_at"]).astimezone(UTC).date()


def in_offset(timestamp: str, hours: int) -> str:
    """The same instant written with another UTC offset, e.g. `...+08:00`."""
    return datetime.fromisoformat(timestamp).astimezone(timezone(timedelta(hours=hours))).isoformat()


def assert_pagination(data: dict, **expected) -> None:
    assert expected.items() <= data["pagination"].items()


def assert_unbroken_chain(history: list[dict], current_quantity: int) -> None:
    """§4.3: ordered by id, each before is the previous after; the last after is the stock."""
    previous = 0
    for log in sorted(history, key=lambda entry: entry["id"]):
        assert log["before_quantity"] == previous, log
        moved = {"in": log["quantity"], "out": -log["quantity"], "adjust": log["quantity"]}[log["action"]]
        assert log["after_quantity"] == log["before_quantity"] + moved, log
        assert log["quantity"] > 0 or log["action"] == "adjust", log
        previous = log["after_quantity"]
    assert previous == current_quantity


# ---- list ----

def test_logs_are_listed_newest_first(client, create_product):
    product = create_product(initial_quantity=5)
    change(client, "add", product["id"], 3)
    change(client, "reduce", product["id"], 2)
    change(client, "adjust", product["id"], 10)

    items = logs(client)
    assert [log["action"] for log in items] == ["adjust", "out", "in", "in"]
    assert [log["id"] for log in items] == sorted((log["id"] for log in items), reverse=True)
    assert all(LOG_FIELDS <= log.keys() for log in items)


def test_empty_log_list_has_zero_pages(client):
    data = ok(client.get(LOGS))
    assert data["items"] == []
    assert_pagination(data, page=1, per_page=20, total=0, pages=0)


def test_log_list_paginates(client, create_product):
    product = create_product(initial_quantity=1)
    for _ in range(4):
        change(client, "add", product["id"], 1)
    every = log_ids(client)
    data = ok(client.get(LOGS, query_string={"per_page": 2, "page": 3}))
    assert [log["id"] for log in data["items"]] == every[4:]
    assert_pagination(data, page=3, per_page=2, total=5, pages=3)


def test_log_timestamps_are_utc_iso_8601_with_offset(client, create_product):
    create_product(initial_quantity=1)
    (log,) = logs(client)
    moment = datetime.fromisoformat(log["created_at"])
    assert moment.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


@pytest.fixture
def mixed(client, create_product):
    """Two products with movements of every action and two operators."""
    pen = create_product(initial_quantity=10)["id"]
    cup = create_product()["id"]
    change(client, "add", cup, 4, operator="张三")
    change(client, "reduce", pen, 3, operator="李四")
    change(client, "adjust", cup, 1, operator="张三")
    return {"pen": pen, "cup": cup}


def test_logs_filter_by_product(client, mixed):
    assert [log["action"] for log in logs(client, product_id=mixed["pen"])] == ["out", "in"]
    assert [log["action"] for log in logs(client, product_id=mixed["cup"])] == ["adjust", "in"]


@pytest.mark.parametrize("action, expected_count", [("in", 2), ("out", 1), ("adjust", 1)])
def test_logs_filter_by_action(client, mixed, action, expected_count):
    items = logs(client, action=action)
    assert len(items) == expected_count
    assert {log["action"] for log in items} == {action}


def test_logs_filter_by_operator(client, mixed):
    assert [log["action"] for log in logs(client, operator="张三")] == ["adjust", "in"]
    assert [log["action"] for log in logs(client, operator="李四")] == ["out"]
    assert logs(client, operator="王五") == []


def test_operator_filter_is_exact(client, create_product):
    product_id = create_product()["id"]
    ids = {name: change(client, "add", product_id, 1, operator=name)["id"] for name in ("Alice", "alice", "ＡＬＩＣＥ")}
    for name, log_id in ids.items():
        assert log_ids(client, operator=name) == [log_id]


def test_logs_filters_combine(client, mixed):
    (log,) = logs(client, product_id=mixed["cup"], action="in", operator="张三")
    assert (log["product_id"], log["quantity"]) == (mixed["cup"], 4)


@pytest.fixture
def three_logs(client, create_product):
    """Three movements, oldest first, at distinct instants."""
    product = create_product()
    return [change(client, "add", product["id"], n) for n in (1, 2, 3)]


def test_date_only_end_date_includes_that_whole_day(client, three_logs):
    today = day_of(three_logs[0])
    everything = [log["id"] for log in reversed(three_logs)]
    assert log_ids(client, end_date=today.isoformat()) == everything
    assert log_ids(client, start_date=today.isoformat(), end_date=today.isoformat()) == everything
    assert log_ids(client, end_date=(today - timedelta(days=1)).isoformat()) == []


@pytest.mark.parametrize("spell", [lambda day: day.strftime("%Y%m%d"), lambda day: day.strftime("%G-W%V-%u")],
                         ids=["basic", "week"])
def test_dates_in_other_iso_spellings_are_whole_days_too(client, three_logs, spell):
    today = day_of(three_logs[0])
    assert len(log_ids(client, end_date=spell(today))) == 3
    assert log_ids(client, end_date=spell(today - timedelta(days=1))) == []


def test_date_only_start_date_starts_at_midnight_utc(client, three_logs):
    today = day_of(three_logs[0])
    assert len(log_ids(client, start_date=today.isoformat())) == 3
    assert log_ids(client, start_date=(today + timedelta(days=1)).isoformat()) == []


@pytest.mark.parametrize("hours", [0, 8, -5])
def test_datetime_bounds_with_offset_are_inclusive_instants(client, three_logs, hours):
    first, middle, last = three_logs
    instant = in_offset(middle["created_at"], hours)
    assert log_ids(client, start_date=instant) == [last["id"], middle["id"]]
    assert log_ids(client, end_date=instant) == [middle["id"], first["id"]]
    assert log_ids(client, start_date=instant, end_date=instant) == [middle["id"]]


def test_datetime_without_offset_is_utc(client, three_logs):
    first, middle, _ = three_logs
    naive = datetime.fromisoformat(middle["created_at"]).replace(tzinfo=None).isoformat()
    assert log_ids(client, end_date=naive) == [middle["id"], first["id"]]


# ---- one log, one product's logs ----

def test_get_log_by_id(client, mixed):
    for listed in logs(client):
        assert ok(client.get(f"/api/logs/{listed['id']}")) == listed


def test_get_unknown_log_is_not_found(client):
    assert_error(client.get(f"/api/logs/{MISSING_ID}"), 404, "NOT_FOUND")


def test_product_logs_are_that_products_newest_first_and_paginated(client, create_product):
    product = create_product(initial_quantity=1)
    other = create_product(initial_quantity=1)
    for n in range(4):
        change(client, "add", product["id"], n + 1)
        change(client, "add", other["id"], 1)

    every = product_logs(client, product["id"], per_page=100)["items"]
    assert [log["quantity"] for log in every] == [4, 3, 2, 1, 1]
    assert {log["product_id"] for log in every} == {product["id"]}

    page = product_logs(client, product["id"], per_page=2, page=2)
    assert page["items"] == every[2:4]
    assert_pagination(page, page=2, per_page=2, total=5, pages=3)


def walk(client, path: str, per_page: int, **query) -> list[dict]:
    """Every page of a movement list, following `next_before_id` from the first."""
    pages = [ok(client.get(path, query_string={"per_page": per_page, **query}))]
    while pages[-1]["pagination"]["next_before_id"] is not None:
        cursor = pages[-1]["pagination"]["next_before_id"]
        pages.append(ok(client.get(path, query_string={"per_page": per_page, "before_id": cursor, **query})))
    return pages


def test_before_id_walks_the_log_newest_first_without_gaps(client, create_product):
    product = create_product(initial_quantity=1)
    other = create_product(initial_quantity=1)
    for n in range(4):
        change(client, "add", product["id"], n + 1, operator="张三")
        change(client, "reduce" if n == 0 else "add", other["id"], 1)

    # running totals give the count, a filtered COUNT does (operator), a product's history
    for path, query in ((LOGS, {}), (LOGS, {"action": "in"}), (LOGS, {"operator": "张三"}),
                        (f"/api/logs/product/{product['id']}", {})):
        every = ok(client.get(path, query_string={"per_page": 100, **query}))["items"]
        pages = walk(client, path, 3, **query)
        assert [log for page in pages for log in page["items"]] == every, path
        assert all(page["pagination"]["total"] == len(every) for page in pages), path  # the whole list, cursor aside
        assert all(len(page["items"]) == 3 for page in pages[:-1])


def test_next_before_id_is_null_only_on_a_short_page(client, create_product):
    product = create_product(initial_quantity=1)
    change(client, "add", product["id"], 1)
    history = product_logs(client, product["id"], per_page=2)
    assert len(history["items"]) == 2 and history["pagination"]["next_before_id"] == history["items"][-1]["id"]
    after = product_logs(client, product["id"], per_page=2, before_id=history["items"][-1]["id"])
    assert after["items"] == [] and after["pagination"]["next_before_id"] is None
    assert "next_before_id" not in ok(client.get("/api/products/"))["pagination"]  # ledger lists only


@pytest.mark.parametrize("query", [{"before_id": 0}, {"before_id": "x"}, {"before_id": 5, "page": 2}])
def test_a_bad_before_id_is_refused(client, create_product, query):
    product = create_product(initial_quantity=1)
    for path in (LOGS, f"/api/logs/product/{product['id']}"):
        assert "before_id" in assert_error(client.get(path, query_string=query), 400, "VALIDATION_ERROR")


def test_product_without_movements_has_an_empty_history(client, create_product):
    data = product_logs(client, create_product()["id"])
    assert data["items"] == []
    assert_pagination(data, total=0, pages=0)


def test_logs_of_unknown_product_are_not_found(client):
    assert_error(client.get(f"/api/logs/product/{MISSING_ID}"), 404, "NOT_FOUND")


def test_logs_keep_the_product_name_and_sku_as_they_were(client, create_product):
    product = create_product(name="旧名", sku="OLD-1", initial_quantity=1)
    ok(client.put(f"/api/products/{product['id']}", json={"name": "新名", "sku": "NEW-1"}))
    change(client, "add", product["id"], 1)

    newest, oldest = product_logs(client, product["id"])["items"]
    assert (oldest["name"], oldest["sku"]) == ("旧名", "OLD-1")
    assert (newest["name"], newest["sku"]) == ("新名", "NEW-1")


def test_actions_are_listed_with_chinese_labels(client):
    assert ok(client.get("/api/logs/actions")) == [
        {"value": "in", "label": "入库"},
        {"value": "out", "label": "出库"},
        {"value": "adjust", "label": "调整"},
        {"value": "transfer_out", "label": "调出"},
        {"value": "transfer_in", "label": "调入"},
    ]


# ---- statistics ----

@pytest.fixture
def movements(client, create_product):
    """A: in 10, in 5, out 3, adjust +8, adjust -5 (stock 15). B: in 2, out 1 (stock 1)."""
    a = create_product(initial_quantity=10)["id"]
    b = create_product()["id"]
    change(client, "add", a, 5)
    change(client, "reduce", a, 3)
    change(client, "add", b, 2)
    change(client, "adjust", a, 20)
    change(client, "reduce", b, 1)
    last = change(client, "adjust", a, 15)
    assert client.post("/api/stock/reduce", json={"product_id": b, "quantity": 100}).status_code == 409
    return {"a": a, "b": b, "today": day_of(last)}


def test_statistics_of_everything(client, movements):
    stats = statistics(client)
    assert {key: stats[key] for key in ("total_logs", "total_in", "total_out", "net_change")} == {
        "total_logs": 7, "total_in": 17, "total_out": 4, "net_change": 16,
    }
    assert stats["by_action"] == {
        "in": {"count": 3, "quantity": 17},
        "out": {"count": 2, "quantity": 4},
        "adjust": {"count": 2, "quantity": 3},
        "transfer_out": {"count": 0, "quantity": 0},
        "transfer_in": {"count": 0, "quantity": 0},
    }
    assert [entry["product_id"] for entry in stats["top_products"]] == [movements["a"], movements["b"]]
    assert stats["daily"] == [{"date": movements["today"].isoformat(), "in": 17, "out": 4, "adjust": 3}]


def test_statistics_net_change_equals_the_stock_on_hand(client, movements):
    on_hand = sum(row["quantity"] for row in ok(client.get("/api/stock/"))["items"])
    assert statistics(client)["net_change"] == on_hand == 16


def test_statistics_for_one_product(client, movements):
    stats = statistics(client, product_id=movements["b"])
    assert (stats["total_logs"], stats["total_in"], stats["total_out"], stats["net_change"]) == (2, 2, 1, 1)
    assert stats["by_action"]["adjust"] == {"count": 0, "quantity": 0}
    assert [entry["product_id"] for entry in stats["top_products"]] == [movements["b"]]
    assert stats["daily"] == [{"date": movements["today"].isoformat(), "in": 2, "out": 1, "adjust": 0}]


def test_statistics_for_a_date_range(client, movements):
    today = movements["today"]
    assert statistics(client, start_date=today.isoformat(), end_date=today.isoformat()) == statistics(client)
    assert statistics(client, start_date=(today + timedelta(days=1)).isoformat())["total_logs"] == 0
    before = statistics(client, end_date=(today - timedelta(days=1)).isoformat())
    assert before == empty_statistics()


def test_statistics_for_a_datetime_range(client, movements):
    a_logs = product_logs(client, movements["a"], per_page=100)["items"]
    newest_adjust = a_logs[0]
    stats = statistics(client, start_date=in_offset(newest_adjust["created_at"], 8))
    assert stats["total_logs"] == 1
    assert stats["by_action"]["adjust"] == {"count": 1, "quantity": -5}
    assert (stats["total_in"], stats["total_out"], stats["net_change"]) == (0, 0, -5)


def empty_statistics() -> dict:
    zero = {"count": 0, "quantity": 0}
    return {
        "total_logs": 0, "total_in": 0, "total_out": 0, "net_change": 0,
        "by_action": {"in": zero, "out": zero, "adjust": zero, "transfer_out": zero, "transfer_in": zero},
        "top_products": [], "daily": [],
    }


def test_statistics_with_no_movements(client):
    assert statistics(client) == empty_statistics()


def test_statistics_still_count_deleted_products(client, movements):
    ok(client.delete(f"/api/products/{movements['b']}"))
    stats = statistics(client)
    assert stats["total_logs"] == 7
    assert movements["b"] in [entry["product_id"] for entry in stats["top_products"]]


# ---- the ledger chain (§4.3) ----

def test_ledger_chain_is_unbroken_after_mixed_operations(client, create_product):
    pen = create_product(initial_quantity=10)["id"]
    cup = create_product()["id"]
    ink = create_product(initial_quantity=3)["id"]

    change(client, "add", pen, 5)
    assert client.post("/api/stock/reduce", json={"product_id": cup, "quantity": 1}).status_code == 409  # empty
    change(client, "add", cup, 7)
    change(client, "reduce", pen, 15)
    change(client, "adjust", ink, 3)                        # no count change, no log
    change(client, "adjust", ink, 9)
    assert client.post("/api/stock/add", json={"product_id": ink, "quantity": "2"}).status_code == 400
    change(client, "adjust", cup, 2)
    assert client.post("/api/stock/reduce", json={"product_id": cup, "quantity": 3}).status_code == 409
    ok(client.patch(f"/api/products/{pen}", json={"name": "改名的笔"}))
    change(client, "add", pen, 4)
    change(client, "reduce", ink, 9)
    change(client, "adjust", pen, 1)

    for product_id in (pen, cup, ink):
        history = product_logs(client, product_id, per_page=100)["items"]
        current = ok(client.get(f"/api/stock/product/{product_id}"))["quantity"]
        assert_unbroken_chain(history, current)
    assert [ok(client.get(f"/api/stock/product/{pid}"))["quantity"] for pid in (pen, cup, ink)] == [1, 2, 0]
