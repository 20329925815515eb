"""Writes refused at COMMIT by a deadlock or a Galera certification conflict (1213) run
again, whole, within DB_RETRY_BUDGET; past it the client is told to retry: a 503 with
Retry-After, never the database-unavailable answer."""
import time

import pytest
from flask import g

from db import db
from services import transaction
from tests.helpers import assert_error, ok

CERTIFICATION_CONFLICT = (1213, "Deadlock found when trying to get lock; try restarting transaction")


@pytest.fixture
def refuse_commits(app, monkeypatch):
    """Make the next `count` COMMITs of write transactions fail as a certification
    conflict does (the transaction is rolled back); returns the times they were refused."""
    with app.app_context():
        dialect = db.engine.dialect
    commit, refused = dialect.do_commit, []

    def refuse(count: int):
        def maybe_refuse(dbapi_connection):
            if g.get("write_connection") is not None and len(refused) < count:
                refused.append(time.monotonic())
                raise dialect.loaded_dbapi.OperationalError(*CERTIFICATION_CONFLICT)
            commit(dbapi_connection)

        monkeypatch.setattr(dialect, "do_commit", maybe_refuse)
        return refused

    return refuse


def _stock(client, product_id: int) -> dict:
    return ok(client.get(f"/api/stock/product/{product_id}"))


def test_a_change_refused_at_commit_runs_again_and_commits_once(client, create_product, refuse_commits):
    product = create_product(initial_quantity=10)
    refused = refuse_commits(5)
    changed = ok(client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 3},
                             headers={"Idempotency-Key": "retried-inside"}))
    assert len(refused) == 5
    assert changed["stock"]["quantity"] == 13
    assert _stock(client, product["id"])["quantity"] == 13
    logs = ok(client.get(f"/api/logs/?product_id={product['id']}"))["items"]
    assert [log["quantity"] for log in logs] == [3, 10]
    assert ok(client.get("/api/logs/verify"))["problems"] == []


def test_retries_back_off_with_growing_pauses(client, create_product, refuse_commits, monkeypatch):
    monkeypatch.setattr(transaction.random, "uniform", lambda low, high: high)  # the longest pause each time
    product = create_product(initial_quantity=1)
    refused = refuse_commits(6)
    ok(client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1}))
    pauses = [later - earlier for earlier, later in zip(refused, refused[1:], strict=False)]
    expected = [transaction.FIRST_BACKOFF * 2 ** attempt for attempt in range(5)]
    assert all(pause >= wanted for pause, wanted in zip(pauses, expected, strict=True)), pauses


def test_conflicts_past_the_budget_answer_503_retry_later_and_change_nothing(app, client, create_product,
                                                                             refuse_commits):
    app.config["DB_RETRY_BUDGET"] = 0.3
    product = create_product(initial_quantity=10)
    refuse_commits(10_000)
    started = time.monotonic()
    response = client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 4},
                           headers={"Idempotency-Key": "budget-spent"})
    assert time.monotonic() - started < 2
    details = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert details["cause"] == "write_conflict" and details["attempts"] >= 3
    message = response.get_json()["message"]
    assert "写入冲突" in message and "Idempotency-Key" in message and "数据库暂时不可用" not in message
    assert response.headers["Retry-After"] == "1"

    refuse_commits(0)
    # Nothing was stored under the key: the retry makes the change, once.
    retried = client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 4},
                          headers={"Idempotency-Key": "budget-spent"})
    assert ok(retried)["stock"]["quantity"] == 6
    assert "Idempotent-Replayed" not in retried.headers
    assert _stock(client, product["id"])["quantity"] == 6


@pytest.mark.parametrize("code, message", [
    (1180, "Got error 6 during COMMIT"),  # whether the write reached the cluster is unknown
    (1047, "WSREP has not yet prepared node for application use"),
])
def test_errors_of_unknown_outcome_are_not_retried_inside(client, create_product, app, monkeypatch, code, message):
    product = create_product(initial_quantity=10)
    with app.app_context():
        dialect = db.engine.dialect
    attempts = []

    def refuse(_dbapi_connection):
        attempts.append(code)
        raise dialect.loaded_dbapi.OperationalError(code, message)

    monkeypatch.setattr(dialect, "do_commit", refuse)
    response = client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1})
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert attempts == [code]
