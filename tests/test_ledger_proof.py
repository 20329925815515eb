"""The self-proving ledger (SPEC §6): seq and hash chain, verify (API and CLI), as-of reads."""
import json
import re
import time
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from sqlalchemy import select, text

from db import db
from models import StockLog, chain_hash

GENESIS = "0" * 64
HEX64 = re.compile(r"[0-9a-f]{64}")


# ---- helpers ----

def move(client, endpoint: str, product_id: int, quantity: int):
    response = client.post(f"/api/stock/{endpoint}", json={"product_id": product_id, "quantity": quantity})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["log"]


def logs_of(client, product_id: int) -> list[dict]:
    """A product's log rows in ledger order (seq ascending)."""
    data = client.get(f"/api/logs/product/{product_id}?per_page=100").get_json()["data"]
    assert data["pagination"]["total"] <= 100
    return sorted(data["items"], key=lambda log: log["seq"])


def verify(client, **params) -> dict:
    response = client.get("/api/logs/verify", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


ROLLUP_PROBLEMS = ("累计数", "日汇总")


def problem_spots(report: dict) -> set[tuple[int, int]]:
    """Where the chain itself is broken; a tampered row also makes the running
    totals disagree, which verify reports separately (see `rollup_problems`)."""
    return {(p["product_id"], p["seq"]) for p in report["problems"] if p not in rollup_problems(report)}


def rollup_problems(report: dict) -> list[dict]:
    return [p for p in report["problems"] if any(word in p["problem"] for word in ROLLUP_PROBLEMS)]


def execute_sql(app, sql: str, **params) -> None:
    """Tamper with the database behind the service's back."""
    with app.app_context():
        db.session.execute(text(sql), params)
        db.session.commit()


def stock_at(client, product_id: int, **params):
    return client.get(f"/api/stock/product/{product_id}", query_string=params)


def point(client, product_id: int, **params) -> dict:
    response = stock_at(client, product_id, **params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def created_at(log: dict) -> datetime:
    return datetime.fromisoformat(log["created_at"])


@pytest.fixture
def ledger(client, create_product):
    """Two products with interleaved movements: A ends at 12 after 5 logs, B at 5 after 3."""
    a = create_product(initial_quantity=10)["id"]
    b = create_product(initial_quantity=2)["id"]
    move(client, "add", a, 5)
    move(client, "add", b, 8)
    move(client, "reduce", a, 7)
    move(client, "reduce", b, 5)
    batch = {"changes": [{"action": "adjust", "product_id": a, "quantity": 9}, {"action": "add", "product_id": a, "quantity": 3}]}
    assert client.post("/api/stock/batch", json=batch).status_code == 200
    return a, b


# ---- the chain ----

def test_each_product_chain_is_gapless_and_hash_linked_from_genesis(client, ledger):
    for product_id, (count, last) in zip(ledger, [(5, 12), (3, 5)]):
        logs = logs_of(client, product_id)
        assert [log["seq"] for log in logs] == list(range(1, count + 1))
        assert logs[0]["prev_hash"] == GENESIS
        assert logs[0]["before_quantity"] == 0
        for earlier, later in pairwise(logs):
            assert later["prev_hash"] == earlier["hash"]
            assert later["before_quantity"] == earlier["after_quantity"]
        assert all(HEX64.fullmatch(log["hash"]) for log in logs)
        assert len({log["hash"] for log in logs}) == count
        assert logs[-1]["after_quantity"] == last


def test_seq_counts_per_product_not_globally(client, ledger):
    a, b = ledger
    assert [log["seq"] for log in logs_of(client, b)] == [1, 2, 3]
    assert logs_of(client, a)[-1]["seq"] == 5


def test_change_answer_and_log_reads_carry_the_same_ledger_fields(client, create_product):
    product_id = create_product()["id"]
    answered = move(client, "add", product_id, 4)
    read = client.get(f"/api/logs/{answered['id']}").get_json()["data"]
    assert {key: read[key] for key in ("seq", "prev_hash", "hash")} == {
        "seq": 1, "prev_hash": GENESIS, "hash": answered["hash"]
    }


# ---- verify ----

def test_verify_of_an_untouched_ledger_finds_no_problem(client, ledger):
    report = verify(client)
    assert report["problems"] == []
    assert report["products_checked"] == 2
    assert report["logs_checked"] == 8


def test_verify_of_an_empty_database_is_clean(client):
    report = verify(client)
    assert (report["products_checked"], report["logs_checked"], report["problems"]) == (0, 0, [])


def test_verify_still_checks_the_ledger_of_a_deleted_product(client, ledger):
    client.delete(f"/api/products/{ledger[0]}")
    report = verify(client)
    assert report["problems"] == []
    assert report["logs_checked"] == 8


@pytest.mark.parametrize(
    "assignment",
    ["quantity = quantity + 1", "after_quantity = after_quantity + 1", "reason = '篡改'", "operator = 'mallory'",
     "action = 'in'"],
)
def test_verify_names_the_product_and_seq_of_an_edited_row(app, client, ledger, assignment):
    a, _ = ledger
    execute_sql(app, f"UPDATE stock_logs SET {assignment} WHERE product_id = :p AND seq = 3", p=a)

    report = verify(client)

    assert report["problems"], report
    assert (a, 3) in problem_spots(report)
    assert {product_id for product_id, _ in problem_spots(report)} == {a}
    assert all(isinstance(problem["problem"], str) and problem["problem"] for problem in report["problems"])


def test_verify_reports_a_deleted_middle_row_as_a_gap(app, client, ledger):
    a, _ = ledger
    execute_sql(app, "DELETE FROM stock_logs WHERE product_id = :p AND seq = 2", p=a)

    report = verify(client)

    assert (a, 3) in problem_spots(report)
    assert report["logs_checked"] == 7


def test_verify_reports_a_deleted_last_row_as_a_stock_mismatch(app, client, ledger):
    _, b = ledger
    execute_sql(app, "DELETE FROM stock_logs WHERE product_id = :p AND seq = 3", p=b)
    assert problem_spots(verify(client)) == {(b, 2)}


def test_verify_reports_a_stock_row_that_disagrees_with_its_ledger(app, client, ledger):
    _, b = ledger
    execute_sql(app, "UPDATE stock SET quantity = quantity + 100 WHERE product_id = :p", p=b)
    assert problem_spots(verify(client)) == {(b, 3)}


def test_verify_reports_a_ledger_whose_stock_row_is_gone(app, client, ledger):
    _, b = ledger
    execute_sql(app, "DELETE FROM stock WHERE product_id = :p", p=b)
    assert problem_spots(verify(client)) == {(b, 3)}


def test_verify_reports_movements_whose_order_was_changed(app, client, ledger):
    """The log lists movements by id: swapping the ids of a product's first and last
    rows leaves every seq and hash intact, but shows them in another order."""
    a, _ = ledger
    logs = logs_of(client, a)
    first, last = logs[0]["id"], logs[-1]["id"]
    # Through a negative id: a large one would move MySQL's AUTO_INCREMENT for later tests.
    for old, new in ((first, -first), (last, first), (-first, last)):
        execute_sql(app, "UPDATE stock_logs SET id = :new WHERE id = :old", new=new, old=old)
    assert problem_spots(verify(client)) == {(a, 2), (a, len(logs))}


def test_a_rewritten_row_with_a_recomputed_hash_still_breaks_the_next_link(app, client, ledger):
    a, _ = ledger
    with app.app_context():
        row = db.session.scalar(select(StockLog).where(StockLog.product_id == a, StockLog.seq == 2))
        row.reason = "伪造"
        row.hash = chain_hash(row)
        db.session.commit()
    assert problem_spots(verify(client)) == {(a, 3)}


def test_verify_with_product_id_checks_only_that_product(app, client, ledger):
    a, b = ledger
    execute_sql(app, "UPDATE stock_logs SET quantity = quantity + 1 WHERE product_id = :p AND seq = 2", p=a)

    clean = verify(client, product_id=b)
    assert (clean["products_checked"], clean["logs_checked"], clean["problems"]) == (1, 3, [])
    dirty = verify(client, product_id=a)
    assert dirty["logs_checked"] == 5
    assert problem_spots(dirty) == {(a, 2)}


@pytest.mark.parametrize("value, status", [("999999", 404), ("abc", 400), ("0", 400)])
def test_verify_of_unknown_or_invalid_product_id_is_refused(client, ledger, value, status):
    response = client.get("/api/logs/verify", query_string={"product_id": value})
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == ("NOT_FOUND" if status == 404 else "VALIDATION_ERROR")


def run_cli_verify(runner, *args):
    result = runner.invoke(args=["ledger", "verify", *args])
    return result.exit_code, json.loads(result.stdout)  # progress lines go to stderr


def test_cli_verify_exits_0_and_prints_the_report_when_clean(client, runner, ledger):
    exit_code, report = run_cli_verify(runner)
    assert exit_code == 0
    assert report["problems"] == []
    assert report == verify(client)


def test_cli_verify_exits_1_and_prints_the_problems(app, client, runner, ledger):
    a, _ = ledger
    execute_sql(app, "UPDATE stock_logs SET quantity = quantity + 1 WHERE product_id = :p AND seq = 4", p=a)
    exit_code, report = run_cli_verify(runner)
    assert exit_code == 1
    assert (a, 4) in problem_spots(report)
    assert report == verify(client)


def test_cli_verify_can_check_one_product(app, runner, ledger):
    a, b = ledger
    execute_sql(app, "UPDATE stock SET quantity = 0 WHERE product_id = :p", p=a)
    assert run_cli_verify(runner, "--product-id", str(b))[0] == 0
    assert run_cli_verify(runner, "--product-id", str(a))[0] == 1


def test_cli_verify_of_unknown_product_fails_with_a_message_not_a_traceback(runner, ledger):
    result = runner.invoke(args=["ledger", "verify", "--product-id", "987654"])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "987654" in result.output or "商品不存在" in result.output


@pytest.mark.parametrize("command", [["ledger", "verify", "--product-id"], ["keys", "revoke"]])
@pytest.mark.parametrize("value", ["0", "99999999999999999999"])
def test_cli_ids_out_of_range_are_usage_errors_not_tracebacks(runner, command, value):
    result = runner.invoke(args=[*command, value])
    assert result.exit_code == 2, result.output  # click's usage error: not 1, which verify means "problems found"
    assert isinstance(result.exception, SystemExit), repr(result.exception)


# ---- as of ----

def test_as_of_seq_answers_that_rows_level_seq_and_hash(client, ledger):
    a, _ = ledger
    for log in logs_of(client, a):
        answer = point(client, a, as_of_seq=log["seq"])
        assert answer == {
            "product_id": a, "quantity": log["after_quantity"], "as_of_seq": log["seq"],
            "seq": log["seq"], "hash": log["hash"],
        }


def test_as_of_seq_zero_is_the_empty_start(client, ledger):
    answer = point(client, ledger[0], as_of_seq=0)
    assert (answer["quantity"], answer["seq"], answer["hash"]) == (0, 0, GENESIS)


def test_as_of_seq_beyond_the_end_is_404(client, ledger):
    response = stock_at(client, ledger[1], as_of_seq=4)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "NOT_FOUND"


@pytest.fixture
def timed(client, create_product):
    """A product with three movements a few milliseconds apart: 0 → 5 → 2 → 9."""
    product_id = create_product()["id"]
    for endpoint, quantity in [("add", 5), ("reduce", 3), ("add", 7)]:
        time.sleep(0.01)
        move(client, endpoint, product_id, quantity)
    logs = logs_of(client, product_id)
    assert created_at(logs[0]) < created_at(logs[1]) < created_at(logs[2])
    return product_id, logs


def test_as_of_between_two_movements_answers_the_earlier_state(client, timed):
    product_id, logs = timed
    first, second = created_at(logs[0]), created_at(logs[1])
    for moment in (first, first + (second - first) / 2, second - timedelta(microseconds=1)):
        answer = point(client, product_id, as_of=moment.isoformat())
        assert (answer["quantity"], answer["seq"], answer["hash"]) == (5, 1, logs[0]["hash"])
        assert "as_of" in answer and "as_of_seq" not in answer


@pytest.mark.parametrize(
    "spell",
    [
        lambda moment: moment.astimezone(timezone(timedelta(hours=8))).isoformat(),
        lambda moment: moment.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        lambda moment: moment.replace(tzinfo=None).isoformat(),
    ],
    ids=["plus-8", "minus-5", "naive-is-utc"],
)
def test_as_of_means_the_same_instant_in_any_offset(client, timed, spell):
    product_id, logs = timed
    for log in logs:
        answer = point(client, product_id, as_of=spell(created_at(log)))
        assert (answer["quantity"], answer["seq"]) == (log["after_quantity"], log["seq"])


def test_as_of_is_inclusive_of_a_movement_at_that_instant(client, timed):
    product_id, logs = timed
    for log in logs:
        answer = point(client, product_id, as_of=log["created_at"])
        assert (answer["quantity"], answer["seq"]) == (log["after_quantity"], log["seq"])


def test_as_of_before_any_movement_is_zero_at_seq_zero(client, timed):
    product_id, logs = timed
    answer = point(client, product_id, as_of=(created_at(logs[0]) - timedelta(seconds=1)).isoformat())
    assert (answer["quantity"], answer["seq"], answer["hash"]) == (0, 0, GENESIS)


def test_as_of_a_date_means_the_end_of_that_day(client, timed):
    product_id, logs = timed
    last_day = created_at(logs[-1]).date()
    assert point(client, product_id, as_of=last_day.isoformat())["seq"] == 3
    day_before = created_at(logs[0]).date() - timedelta(days=1)
    assert point(client, product_id, as_of=day_before.isoformat())["quantity"] == 0


def test_as_of_now_answers_the_current_level(client, timed):
    product_id, _ = timed
    current = client.get(f"/api/stock/product/{product_id}").get_json()["data"]["quantity"]
    answer = point(client, product_id, as_of=datetime.now().astimezone().isoformat())
    assert (answer["quantity"], answer["seq"]) == (current, 3) == (9, 3)


def test_as_of_with_both_parameters_is_400(client, ledger):
    response = stock_at(client, ledger[0], as_of_seq=1, as_of=date.today().isoformat())
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "params",
    [{"as_of": "yesterday"}, {"as_of": "2026-13-01"}, {"as_of": "2026-02-30T10:00:00"}, {"as_of_seq": "-1"},
     {"as_of_seq": "abc"}, {"as_of_seq": "1.5"}],
)
def test_bad_as_of_values_are_400(client, ledger, params):
    response = stock_at(client, ledger[0], **params)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("params", [{"as_of_seq": 1}, {"as_of": "2026-01-01"}])
def test_as_of_of_unknown_product_is_404(client, params):
    response = stock_at(client, 987654, **params)
    assert response.status_code == 404


@pytest.mark.parametrize("tampering, expected", [
    ("UPDATE stock SET total_in = total_in + 1 WHERE product_id = :p", "库存行的累计数与流水不符"),
    ("UPDATE movement_daily SET out_quantity = out_quantity + 1", "的日汇总与流水不符"),
])
def test_verify_reports_running_totals_that_disagree_with_the_ledger(app, client, ledger, tampering, expected):
    a, _ = ledger
    execute_sql(app, tampering, p=a)
    report = verify(client)
    assert problem_spots(report) == set()
    assert [p["problem"].endswith(expected) for p in rollup_problems(report)] == [True]


def test_a_tampered_row_also_breaks_the_running_totals(app, client, ledger):
    a, _ = ledger
    execute_sql(app, "UPDATE stock_logs SET quantity = quantity + 1 WHERE product_id = :p AND seq = 2", p=a)
    assert rollup_problems(verify(client))
