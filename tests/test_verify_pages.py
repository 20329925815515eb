"""`GET /api/logs/verify` in bounded pages: a client follows the cursors until `complete`,
the pages add up to the whole ledger's report, each page keeps to its budget, and
verifying never takes every worker (SPEC §6)."""
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import event

from db import db
from main import create_app
from models import MovementDaily
from services import api_key_service, ledger_service
from tests.conftest import PROJECT_DIR, SHARED_DATABASE_URL, LiveServer, empty_tables
from tests.test_ledger_proof import execute_sql, run_cli_verify
from utils.work_slots import WorkSlots

PROBLEM_KEYS = ("product_id", "seq", "problem")


def walk(client, **params) -> list[dict]:
    """Every page of one verify walk, following the cursors from the start."""
    pages, cursor = [], {}
    while True:
        response = client.get("/api/logs/verify", query_string={**cursor, **params})
        assert response.status_code == 200, response.get_json()
        page = response.get_json()["data"]
        pages.append(page)
        if page["complete"]:
            assert page["next_after"] is None and page["next_after_day"] is None
            return pages
        assert len(pages) < 1000, "the walk does not end"
        if page["next_after"] is not None:
            assert page["next_after_day"] is None and page["next_after"] >= cursor.get("after", 0)
            cursor = {"after": page["next_after"]}
        else:
            assert page["next_after_day"] > cursor.get("after_day", "")
            cursor = {"after_day": page["next_after_day"]}


def summed(pages: list[dict]) -> dict:
    return {
        "products_checked": sum(page["products_checked"] for page in pages),
        "logs_checked": sum(page["logs_checked"] for page in pages),
        "problems": sorted(tuple(p[key] for key in PROBLEM_KEYS) for page in pages for p in page["problems"]),
    }


def unbounded(runner) -> dict:
    """The whole ledger's report in one walk: the CLI, which has no budget."""
    _, report = run_cli_verify(runner, "--quiet")
    return {**report, "problems": sorted(tuple(p[key] for key in PROBLEM_KEYS) for p in report["problems"])}


@pytest.fixture
def seeded(app, runner):
    """30 products with about 20 movements each."""
    result = runner.invoke(args=["seed", "--products", "30", "--movements", "600", "--random-seed", "9"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        return [row[0] for row in db.session.execute(db.text("SELECT product_id FROM stock ORDER BY product_id"))]


def test_a_walk_by_cursor_adds_up_to_the_unbounded_report(app, client, runner, seeded):
    app.config["VERIFY_PAGE_ROWS"] = 50
    pages = walk(client)
    assert len(pages) > 5
    whole = unbounded(runner)
    assert summed(pages) == {key: whole[key] for key in ("products_checked", "logs_checked", "problems")}
    assert (whole["products_checked"], whole["logs_checked"], whole["problems"]) == (30, 600, [])


def test_tampering_on_different_pages_is_found_by_the_walk(app, client, runner, seeded):
    first, middle, last = seeded[0], seeded[15], seeded[-1]
    execute_sql(app, "UPDATE stock_logs SET quantity = quantity + 1 WHERE product_id = :p AND seq = 3", p=first)
    execute_sql(app, "DELETE FROM stock_logs WHERE product_id = :p AND seq = 2", p=middle)
    execute_sql(app, "UPDATE stock SET quantity = quantity + 5 WHERE product_id = :p", p=last)
    execute_sql(app, "UPDATE movement_daily SET in_quantity = in_quantity + 1")
    app.config["VERIFY_PAGE_ROWS"] = 40
    pages = walk(client)
    found = summed(pages)["problems"]
    assert found == unbounded(runner)["problems"]
    spots = {(product_id, seq) for product_id, seq, _ in found}
    assert {(first, 3), (middle, 3), (0, 0)} <= spots
    assert any(product_id == last and "库存为" in problem for product_id, _, problem in found)
    pages_with_problems = [page for page in pages if page["problems"]]
    assert len(pages_with_problems) >= 3


def test_a_page_stops_after_the_product_that_reaches_the_row_budget(app, client, seeded):
    app.config["VERIFY_PAGE_ROWS"] = 30
    for page in [page for page in walk(client) if page["next_after"] is not None]:
        last_rows = client.get(f"/api/logs/product/{page['next_after']}").get_json()["data"]["pagination"]["total"]
        # The page's last product reaches the budget; the products before it do not.
        assert page["logs_checked"] >= 30
        assert page["logs_checked"] - last_rows < 30


def test_a_page_stops_after_the_product_that_reaches_the_time_budget(app, client, runner, seeded):
    """With no time to spend, each page checks one product, and the daily totals get a
    page of their own."""
    app.config["VERIFY_PAGE_SECONDS"] = 0
    pages = walk(client)
    assert [page["products_checked"] for page in pages] == [1] * len(seeded) + [0]
    assert summed(pages)["logs_checked"] == 600
    execute_sql(app, "UPDATE movement_daily SET out_movements = out_movements + 1")
    last_page = walk(client)[-1]
    assert last_page["problems"] and {p["problem"][-9:] for p in last_page["problems"]} == {"的日汇总与流水不符"}


def test_a_ledger_row_without_a_stock_row_is_found_past_the_last_product(app, client, runner, seeded):
    execute_sql(app, "DELETE FROM stock WHERE product_id = :p", p=seeded[-1])
    app.config["VERIFY_PAGE_ROWS"] = 25
    found = summed(walk(client))["problems"]
    assert found == unbounded(runner)["problems"]
    assert any(product_id == seeded[-1] and problem == "有流水但没有库存行" for product_id, _, problem in found)


@pytest.mark.parametrize("params", [{"product_id": 1, "after": 0}, {"product_id": 1, "after_day": "2026-01-01"},
                                    {"after": 0, "after_day": "2026-01-01"}])
def test_more_than_one_scope_is_refused(client, seeded, params):
    response = client.get("/api/logs/verify", query_string=params)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


@pytest.mark.parametrize("cursor", [{"after": "-1"}, {"after": "abc"}, {"after": str(2**63)},
                                    {"after_day": "2026-02-30"}, {"after_day": "tomorrow"}])
def test_bad_cursors_are_refused(client, cursor):
    response = client.get("/api/logs/verify", query_string=cursor)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_cursor_past_the_end_is_a_complete_empty_page(client, seeded):
    page = client.get("/api/logs/verify", query_string={"after": seeded[-1]}).get_json()["data"]
    assert (page["products_checked"], page["logs_checked"], page["complete"], page["next_after"]) == (0, 0, True, None)


def test_the_daily_totals_are_checked_in_chunks_of_days_across_pages(app, client, runner, seeded, monkeypatch):
    """Small reads (10 rows) and pages (40 rows): the days take pages of their own, a
    tampered day is found on its page, and the walk still adds up to the unbounded report."""
    monkeypatch.setattr(ledger_service, "CHUNK_ROWS", 10)
    app.config["VERIFY_PAGE_ROWS"] = 40
    with app.app_context():
        days = [str(day) for day in db.session.scalars(db.select(MovementDaily.day).order_by(MovementDaily.day))]
    execute_sql(app, "UPDATE movement_daily SET adjust_quantity = adjust_quantity + 1 WHERE day = :d", d=days[-3])
    pages = walk(client)
    day_pages = [page for page in pages if page["next_after_day"] is not None]
    assert len(day_pages) >= 3
    found = summed(pages)["problems"]
    assert found == unbounded(runner)["problems"] == [(0, 0, f"{days[-3]} 的日汇总与流水不符")]
    assert summed(pages)["logs_checked"] == 600


def test_the_cli_reads_the_whole_ledger_in_one_ordered_statement(app, client, runner, seeded, monkeypatch):
    """Read in keyset chunks, each ledger row is a random read through the index (on a
    ledger larger than memory, a disk read); the unbounded walk streams one sorted read
    instead, however small the chunks, and still finds what the pages find."""
    monkeypatch.setattr(ledger_service, "CHUNK_ROWS", 10)
    execute_sql(app, "UPDATE stock_logs SET quantity = quantity + 1 WHERE product_id = :p AND seq = 3", p=seeded[7])
    statements = []

    def record(connection, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            report = unbounded(runner)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert len([s for s in statements if "ORDER BY stock_logs.product_id, stock_logs.seq" in s]) == 1
    assert report["logs_checked"] == 600 and report["problems"] == summed(walk(client))["problems"]
    assert (seeded[7], 3) in {(product_id, seq) for product_id, seq, _ in report["problems"]}


def test_while_every_verify_slot_is_taken_the_call_answers_429_at_once(app, client, seeded):
    slots = WorkSlots("verify", app.config["SQLALCHEMY_DATABASE_URI"], app.config["VERIFY_CONCURRENCY"], "")
    with slots.hold():
        started = time.monotonic()
        response = client.get("/api/logs/verify")
        assert time.monotonic() - started < 1
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    body = response.get_json()
    assert body["success"] is False and body["error"]["code"] == "RATE_LIMITED"
    assert client.get("/api/logs/verify").status_code == 200  # the slot is free again


def test_an_sqlite_database_keeps_its_verify_slots_beside_its_file(tmp_path):
    database = tmp_path / "shop.db"
    slots = WorkSlots("verify", f"sqlite:///{database}", 2, "")
    assert slots.paths == [f"{database}.verify-0.lock", f"{database}.verify-1.lock"]


def test_the_cli_walks_the_whole_ledger_with_progress_on_stderr(tmp_path, db_url):
    """A real `flask` process: the report alone on stdout, progress lines on stderr."""
    env = {"DATABASE_URL": db_url, "PATH": "/usr/bin:/bin", "APP_ENV": "development", "LOG_LEVEL": "ERROR",
           # The shared server database holds the suite's tables, built from the models.
           "SCHEMA_SETUP": "create_all" if SHARED_DATABASE_URL else "migrate"}
    if SHARED_DATABASE_URL:
        empty_tables(create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url}))
    flask = [sys.executable, "-m", "flask", "--app", "main"]
    seeded = subprocess.run([*flask, "seed", "--products", "200", "--movements", "4000"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    result = subprocess.run([*flask, "ledger", "verify"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["products_checked"], report["logs_checked"], report["complete"]) == (200, 4000, True)
    assert "verified 200 products, 4000 movements" in result.stderr


@pytest.fixture
def busy_ledger_server(tmp_path, db_url):
    """Two workers enforcing keys over a ledger whose whole verify takes several seconds,
    with one-second pages."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url})
    if SHARED_DATABASE_URL:
        empty_tables(app)
    result = app.test_cli_runner().invoke(args=["seed", "--products", "2000", "--movements", "60000", "--random-seed", "4"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        viewer = api_key_service.create_key("verify-viewer", "viewer")[1]
        db.engine.dispose()
    server = LiveServer(db_url, 2, tmp_path / "gunicorn.log", extra_env={
        "AUTH_REQUIRED": "true", "VERIFY_PAGE_SECONDS": "1", "SCHEMA_SETUP": "create_all"})  # as seeded above
    try:
        server.wait_ready()
        server.viewer = {"Authorization": f"Bearer {viewer}"}
        yield server
    finally:
        server.stop()


def test_four_parallel_verify_calls_from_one_key_leave_liveness_answering(busy_ledger_server):
    """Four clients of one viewer key keep verifying; one page runs at a time, the others
    are refused at once, and the liveness probe keeps answering at once (it waited for whole walks of several seconds)."""
    url, viewer = busy_ledger_server.url, busy_ledger_server.viewer
    stop_at = time.monotonic() + 6

    def keep_verifying(_) -> list[tuple[int, float, dict]]:
        answers, cursor = [], {}
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                started = time.monotonic()
                response = session.get(f"{url}/api/logs/verify", params=cursor, headers=viewer, timeout=30)
                answers.append((response.status_code, time.monotonic() - started, response.json()))
                if response.status_code == 200:
                    page = response.json()["data"]
                    cursor = ({"after": page["next_after"]} if page["next_after"] is not None else
                              {"after_day": page["next_after_day"]} if page["next_after_day"] else {})
        return answers

    probes = []
    with ThreadPoolExecutor(4) as pool:
        clients = [pool.submit(keep_verifying, n) for n in range(4)]
        time.sleep(0.5)
        while time.monotonic() < stop_at:
            started = time.monotonic()
            status = requests.get(f"{url}/health/live", timeout=10).status_code
            probes.append((status, time.monotonic() - started))
            time.sleep(0.2)
        answers = [answer for future in clients for answer in future.result()]

    assert probes and all(status == 200 for status, _ in probes), probes
    assert max(seconds for _, seconds in probes) < 2, probes
    statuses = {status for status, _, _ in answers}
    assert statuses == {200, 429}, statuses
    for status, seconds, body in answers:
        if status == 429:
            assert body["success"] is False and body["error"]["code"] == "RATE_LIMITED"
        else:
            assert body["data"]["problems"] == []
            assert seconds < 3, seconds  # one second of work, plus the page's reads and answer
    # One page at a time, each stopped by its budget: no client waited for the whole ledger.
    assert not any(body["data"]["complete"] and body["data"]["products_checked"] == 2000
                   for status, _, body in answers if status == 200)
