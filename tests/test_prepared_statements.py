"""A stock movement's statements are prepared once and run on the driver's cursor
(db.prepared.PreparedStatement), inside the write transaction: a driver error comes out
as SQLAlchemy's, so it is handled like any other, and nothing of the movement stays."""
import threading

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from db import InventorySQLAlchemy, db
from main import create_app
from models import StockLog
from schemas.stock import StockChange
from services import stock_service
from services.transaction import run_in_write_transaction
from tests.conftest import SHARED_DATABASE_URL, empty_tables
from tests.helpers import ok


def _movement(product_id: int, then=None):
    """A receipt of 5 on the locked row; `then(log)` runs inside the same transaction."""
    def work():
        stock = stock_service.lock_stock(product_id)
        level = stock_service.lock_level(stock, None)
        log = stock_service.record_change(stock, level, "in", StockChange(product_id=product_id, quantity=5), None)
        if then:
            then(log)
        return log
    return work


def _state(client, app, product_id: int) -> tuple[int, int]:
    quantity = ok(client.get(f"/api/stock/product/{product_id}"))["quantity"]
    with app.app_context():
        logs = db.session.scalar(select(func.count()).select_from(StockLog).where(StockLog.product_id == product_id))
    return quantity, logs


def test_a_refused_statement_raises_sqlalchemys_error_and_undoes_the_movement(app, client, create_product):
    product_id = create_product(name="预编译语句", initial_quantity=10)["id"]

    def insert_the_same_ledger_position_again(log):
        row = {name: value for name, value in vars(log).items() if name != "id"}
        stock_service._INSERT_LOG.run(db.session.connection(), **row)

    with app.test_request_context(), pytest.raises(IntegrityError):
        run_in_write_transaction(_movement(product_id, then=insert_the_same_ledger_position_again))
    assert _state(client, app, product_id) == (10, 1)

    ok(client.post("/api/stock/add", json={"product_id": product_id, "quantity": 5}))
    assert _state(client, app, product_id) == (15, 2)
    assert ok(client.get(f"/api/logs/verify?product_id={product_id}"))["problems"] == []


@pytest.mark.skipif(not (SHARED_DATABASE_URL or "").startswith("mysql"), reason="a server connection to lose")
def test_a_connection_lost_mid_movement_is_unavailable_and_the_next_movement_succeeds(app, client, create_product):
    product_id = create_product(name="断线写入", initial_quantity=10)["id"]
    killer = create_engine(SHARED_DATABASE_URL, isolation_level="AUTOCOMMIT")

    def lose_the_connection(_log):
        own = db.session.connection().exec_driver_sql("SELECT CONNECTION_ID()").scalar()
        with killer.connect() as connection:
            connection.execute(text(f"KILL {int(own)}"))
        stock_service._LAST_LOG.run(db.session.connection(), product_id=product_id)

    try:
        with app.test_request_context(), pytest.raises(OperationalError) as raised:
            run_in_write_transaction(_movement(product_id, then=lose_the_connection))
    finally:
        killer.dispose()
    assert raised.value.connection_invalidated  # answered 503 SERVICE_UNAVAILABLE
    assert _state(client, app, product_id) == (10, 1)

    ok(client.post("/api/stock/add", json={"product_id": product_id, "quantity": 5}))
    assert _state(client, app, product_id) == (15, 2)
    assert ok(client.get(f"/api/logs/verify?product_id={product_id}"))["problems"] == []


def test_reads_keep_one_connection_per_thread_and_give_it_up_before_a_fork(app, client, create_product):
    """The single-row reads run on a connection kept per thread; a process about to
    fork (gunicorn's master) closes its own, so no worker inherits it."""
    from db.reads import READ_ENGINE, close_pooled_connections

    product_id = create_product(name="读连接", initial_quantity=3)["id"]
    reads = app.extensions[READ_ENGINE]
    with app.app_context():
        kept = reads.connection()
        assert ok(client.get(f"/api/stock/product/{product_id}"))["quantity"] == 3
        ok(client.post("/api/stock/add", json={"product_id": product_id, "quantity": 4}))
        assert ok(client.get(f"/api/stock/product/{product_id}"))["quantity"] == 7  # sees the commit
        assert reads.connection() is kept

        elsewhere = []
        worker = threading.Thread(target=lambda: elsewhere.append(reads.connection()))
        worker.start()
        worker.join()
        assert elsewhere[0] is not kept

        close_pooled_connections(app)
        assert kept.dbapi_connection is None  # closed
        assert reads.connection() is not kept
    assert ok(client.get(f"/api/products/{product_id}"))["stock"]["quantity"] == 7


def test_a_request_that_used_the_session_ends_it_and_one_that_did_not_leaves_none(app, client, create_product):
    assert any(getattr(hook, "__func__", None) is InventorySQLAlchemy._teardown_session
               for hook in app.teardown_appcontext_funcs)  # the override is the hook Flask-SQLAlchemy registers
    sessions = []  # each request's session as its teardown begins, or None when it opened none
    app.teardown_request(lambda exc: sessions.append(db.session() if db.session.registry.has() else None))
    product = create_product()
    sessions.clear()
    ok(client.get("/api/products/"))  # a list page reads through the request's session
    assert sessions[0] is not None and not sessions[0].in_transaction()  # its read transaction ended with it
    ok(client.get(f"/api/products/{product['id']}"))  # a single-row read runs without one
    assert sessions[1] is None


def test_a_stock_movement_writes_apart_from_the_session_and_refuses_work_that_uses_it(app, client, create_product):
    """Movements run on a connection of their own (`session_free`), half the cost of the
    session's transaction; the session's own transaction would be apart from the
    movement's, so using it there is refused and the movement is not written."""
    sessions = []
    app.teardown_request(lambda exc: sessions.append(db.session() if db.session.registry.has() else None))
    product_id = create_product(name="会话之外", initial_quantity=10)["id"]
    sessions.clear()
    ok(client.post("/api/stock/add", json={"product_id": product_id, "quantity": 5}))
    assert sessions == [None]

    def use_the_session(_log):
        db.session.scalar(select(func.count()).select_from(StockLog))

    with app.test_request_context(), pytest.raises(RuntimeError, match="session-free"):
        run_in_write_transaction(_movement(product_id, then=use_the_session), session_free=True)
    assert _state(client, app, product_id) == (15, 2)
    with app.test_request_context():
        run_in_write_transaction(_movement(product_id), session_free=True)
    assert _state(client, app, product_id) == (20, 3)


@pytest.fixture
def one_connection_app(db_url):
    """The app with a pool that keeps one connection: requests made one at a time then
    all use that same connection. (Creating the schema on MySQL holds a second one for
    its lock, so the pool starts afresh after it.)"""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "DB_POOL_SIZE": 1,
                                 "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1}})
    if SHARED_DATABASE_URL:
        empty_tables(app)
    with app.app_context():
        db.engine.dispose()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_commit_the_database_refuses_leaves_nothing_for_the_next_request_to_commit(one_connection_app,
                                                                                      monkeypatch):
    """After a COMMIT that fails without losing the connection, SQLAlchemy hands the
    connection back to its pool with the transaction still open on it. The pool's
    ROLLBACK on return (its default, kept on purpose) is what stops the next request's
    COMMIT, on the same connection, from committing the refused movement with its own."""
    app, client = one_connection_app, one_connection_app.test_client()
    refused = ok(client.post("/api/products/", json={"name": "提交被拒", "sku": "COMMIT-REFUSED", "price": 1,
                                                     "initial_quantity": 10}), 201)["id"]
    following = ok(client.post("/api/products/", json={"name": "下一个请求", "sku": "COMMIT-NEXT", "price": 1,
                                                       "initial_quantity": 10}), 201)["id"]
    with app.app_context():
        dialect = db.engine.dialect
    commit, refusals = dialect.do_commit, []

    def refuse_the_first(dbapi_connection):
        if not refusals:
            refusals.append(dbapi_connection)
            raise dialect.loaded_dbapi.OperationalError(1180, "Got error 1 during COMMIT")
        commit(dbapi_connection)

    monkeypatch.setattr(dialect, "do_commit", refuse_the_first)
    assert client.post("/api/stock/add", json={"product_id": refused, "quantity": 5}).status_code == 503
    assert ok(client.post("/api/stock/add", json={"product_id": following, "quantity": 5}))["stock"]["quantity"] == 15
    assert _state(client, app, refused) == (10, 1)
    assert ok(client.get(f"/api/logs/verify?product_id={refused}"))["problems"] == []
