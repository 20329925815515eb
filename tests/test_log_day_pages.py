"""Numbered pages of the whole movement log started at a day (services/log_service.py
`_day_landmarks`): each page is the plain OFFSET query's page, whatever order the rows'
ids and days are in, and every way a movement is written keeps its day's id range."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from db import db
from models import MovementDaily, StockLog, shard_of
from services import log_service, pagination
from services.ledger_service import DAILY_COLUMNS, DAILY_TOTALS
from tests.helpers import ok, sorted_statements

LOGS = "/api/logs/"


@pytest.fixture(autouse=True)
def every_page_asks_for_landmarks(monkeypatch):
    """However near an end: these ledgers are too short to be far from both."""
    monkeypatch.setattr(pagination, "LANDMARKS_FROM", 0)


@pytest.fixture
def history(app, runner):
    """About 13 movements a day over 90 days, in three warehouses."""
    result = runner.invoke(args=["seed", "--products", "40", "--movements", "1200", "--warehouses", "3",
                                 "--random-seed", "5"])
    assert result.exit_code == 0, result.output


def plain_page(app, offset: int, limit: int) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(StockLog.id).order_by(StockLog.id.desc()).limit(limit).offset(offset)))


def assert_pages_are_plain(app, client, per_page: int) -> None:
    total = ok(client.get(LOGS, query_string={"per_page": 1}))["pagination"]["total"]
    for page in range(1, -(-total // per_page) + 2):  # and one past the last
        data = ok(client.get(LOGS, query_string={"page": page, "per_page": per_page}))
        ids = [log["id"] for log in data["items"]]
        assert ids == plain_page(app, (page - 1) * per_page, per_page), (per_page, page)
        assert data["pagination"]["total"] == total
        more = page * per_page < total
        assert (data["pagination"]["next_after"] is not None) == (bool(ids) and more), (per_page, page)
        assert (data["pagination"]["prev_before"] is not None) == (bool(ids) and page > 1), (per_page, page)


def landmarks(app) -> list:
    with app.app_context():
        return log_service._day_landmarks()


def day_ranges(app) -> dict:
    """Each day's (first id, last id) as its totals rows hold them, and as the ledger has them."""
    with app.app_context():
        day = func.date(StockLog.created_at)
        ledger = {str(each): (first, last) for each, first, last in db.session.execute(
            select(day, func.min(StockLog.id), func.max(StockLog.id)).group_by(day))}
        stored = {str(each): (first, last) for each, _, first, last in log_service.daily_id_ranges([])}
    return {"ledger": ledger, "stored": stored}


def verify_problems(client) -> list[str]:
    return [problem["problem"] for problem in ok(client.get("/api/logs/verify"))["problems"]]


@pytest.mark.parametrize("per_page", [7, 20, 100])
def test_every_numbered_page_is_the_plain_offset_page(app, client, history, per_page):
    assert_pages_are_plain(app, client, per_page)


def test_each_day_of_a_seeded_history_is_a_landmark(app, client, history):
    ranges = day_ranges(app)
    assert ranges["stored"] == ranges["ledger"]
    marks = landmarks(app)
    assert len(marks) == len(ranges["ledger"])  # a cut below every day, the newest's at the top
    assert [mark.rows for mark in marks] == sorted({mark.rows for mark in marks})
    assert marks[0].rows == 0 and marks[0].value == max(last for _, last in ranges["ledger"].values())
    assert verify_problems(client) == []
    with app.app_context(), sorted_statements() as statements:  # the middle page starts at a day
        ok(client.get(LOGS, query_string={"page": 30, "per_page": 20}))
    (read,) = [" ".join(sql.split()) for sql, _ in statements if "FROM stock_logs" in sql]
    assert "WHERE stock_logs.id <=" in read or "WHERE stock_logs.id >" in read


def test_a_day_holding_a_later_id_than_a_newer_day_still_gives_exact_pages(app, client, history, create_product):
    """A row of yesterday committed after today's rows (a writer at midnight, another
    Galera node): no cut between them holds, and pages there are walked to from farther."""
    product = create_product(initial_quantity=5)
    for quantity in (1, 2):
        ok(client.post("/api/stock/add", json={"product_id": product["id"], "quantity": quantity}))
    before = landmarks(app)
    with app.app_context():
        yesterday = datetime.now(timezone.utc) - timedelta(days=1)
        late = StockLog(product_id=product["id"], seq=99, action="in", quantity=1, before_quantity=0, after_quantity=1,
                        sku=product["sku"], product_name=product["name"], created_at=yesterday, prev_hash="", hash="")
        db.session.add(late)
        db.session.flush()
        DAILY_TOTALS.run(db.session.connection(), day=yesterday.date(), shard=shard_of(product["id"]),
                         **{**dict.fromkeys(DAILY_COLUMNS, 0), "in_movements": 1, "in_quantity": 1},
                         first_id=late.id, last_id=late.id)
        db.session.commit()
    ranges = day_ranges(app)
    assert ranges["stored"] == ranges["ledger"]
    after = landmarks(app)
    assert len(after) == len(before) - 1  # the cut between yesterday and today is gone
    for per_page in (3, 20):
        assert_pages_are_plain(app, client, per_page)
    assert not [problem for problem in verify_problems(client) if "编号范围" in problem]


def test_a_day_whose_range_is_unknown_leaves_no_landmark_and_pages_stay_exact(app, client, history):
    """A totals row from before the ranges were kept, in the middle of the history."""
    with app.app_context():
        days = sorted(db.session.execute(select(MovementDaily.day, MovementDaily.shard)).all())
        day, shard = days[len(days) // 2]
        db.session.execute(MovementDaily.__table__.update()
                           .where(MovementDaily.day == day, MovementDaily.shard == shard)
                           .values(first_id=None, last_id=None))
        db.session.commit()
    assert landmarks(app) == []
    assert_pages_are_plain(app, client, 50)
    assert verify_problems(client) == []  # unknown is not wrong


def test_a_second_seed_into_the_same_days_widens_their_ranges(app, client, runner, history):
    result = runner.invoke(args=["seed", "--products", "5", "--movements", "300", "--random-seed", "6"])
    assert result.exit_code == 0, result.output
    ranges = day_ranges(app)
    assert ranges["stored"] == ranges["ledger"]
    assert [mark.rows for mark in landmarks(app)] == [0]  # the two seeds' ids interleave in every day
    assert_pages_are_plain(app, client, 40)
    assert verify_problems(client) == []


@pytest.mark.parametrize("tampering", ["UPDATE movement_daily SET last_id = last_id - 1",
                                       "UPDATE movement_daily SET first_id = first_id - 1"])
def test_verify_reports_a_day_range_that_disagrees_with_the_ledger(app, client, create_product, tampering):
    product = create_product(initial_quantity=5)
    ok(client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1}))
    with app.app_context():
        db.session.execute(text(tampering))
        db.session.commit()
    assert [problem for problem in verify_problems(client) if "编号范围" in problem]


def test_every_writer_keeps_the_day_ranges(app, client, create_product):
    """Single movements, transfers, batches (dry runs leave nothing), stocktake imports."""
    tea, rice = create_product(initial_quantity=10), create_product(initial_quantity=8)
    default = next(w["id"] for w in ok(client.get("/api/warehouses/"))["items"] if w["is_default"])
    other = ok(client.post("/api/warehouses/", json={"code": "SH", "name": "上海仓"}), 201)["id"]
    ok(client.post("/api/stock/reduce", json={"product_id": tea["id"], "quantity": 2}))
    ok(client.post("/api/stock/adjust", json={"product_id": rice["id"], "quantity": 6}))
    ok(client.post("/api/stock/transfer", json={"product_id": tea["id"], "from_warehouse_id": default,
                                                "to_warehouse_id": other, "quantity": 3}))
    changes = [{"action": "add", "product_id": rice["id"], "quantity": 4},
               {"action": "transfer", "product_id": rice["id"], "from_warehouse_id": default,
                "to_warehouse_id": other, "quantity": 1}]
    ok(client.post("/api/stock/batch", json={"changes": changes, "dry_run": True}))
    ok(client.post("/api/stock/batch", json={"changes": changes}))
    body = f"sku,quantity\r\n{tea['sku']},1\r\n{rice['sku']},2\r\n".encode()
    ok(client.post("/api/import/products", data=body, content_type="text/csv"))
    ranges = day_ranges(app)
    assert ranges["stored"] == ranges["ledger"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MovementDaily)
                                 .where(MovementDaily.first_id.is_(None))) == 0
    assert verify_problems(client) == []
    assert_pages_are_plain(app, client, 2)
