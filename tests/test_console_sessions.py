"""Console login sessions end on the server: at logout (a copied cookie is refused from
then on, by every worker of every instance) and after a configured idle time."""
import re
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from db import db
from main import create_app
from models import ConsoleSession
from models.types import utcnow
from services import api_key_service
from tests.conftest import SHARED_DATABASE_URL, LiveServer, empty_tables
from tests.test_access_control import bearer, issue_keys, make_app

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "session"


def _token(page: str) -> str:
    return TOKEN.search(page).group(1)


def _login(browser, key: str):
    token = _token(browser.get("/console/login").get_data(as_text=True))
    response = browser.post("/console/login", data={"api_key": key, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def _copy_cookie(source, target) -> None:
    target.set_cookie(COOKIE, source.get_cookie(COOKIE).value)


def _receive(browser, product_id: int):
    """The stock page's 入库 form, as a person submits it."""
    token = _token(browser.get("/console/stock").get_data(as_text=True))
    return browser.post("/console/stock/in", data={"product_id": product_id, "quantity": 1, "csrf_token": token})


@pytest.fixture
def console(db_url):
    app = make_app(db_url, AUTH_REQUIRED=True, CONSOLE_SESSION_IDLE_MINUTES=30)
    keys = issue_keys(app)
    api = app.test_client()
    product = api.post("/api/products/", json={"name": "会话", "sku": "S-1", "price": 1, "initial_quantity": 106},
                       headers=bearer(keys["admin"])).get_json()["data"]
    yield app, keys, api, product
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _level(api, keys, product_id: int) -> int:
    return api.get(f"/api/stock/product/{product_id}", headers=bearer(keys["viewer"])).get_json()["data"]["quantity"]


def test_a_copied_session_cookie_stops_working_at_logout(console):
    app, keys, api, product = console
    browser, thief = app.test_client(), app.test_client()
    _login(browser, keys["operator"])
    _copy_cookie(browser, thief)
    assert _receive(thief, product["id"]).status_code == 302  # the copy works while the session lasts …
    assert _level(api, keys, product["id"]) == 107
    form = {"product_id": product["id"], "quantity": 1,
            "csrf_token": _token(thief.get("/console/stock").get_data(as_text=True))}
    page = browser.get("/console/").get_data(as_text=True)
    assert browser.post("/console/logout", data={"csrf_token": _token(page)}).status_code == 302

    refused = thief.post("/console/stock/in", data=form)  # … and not after logout
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/console/login")
    assert _level(api, keys, product["id"]) == 107
    assert thief.get("/console/").headers["Location"].startswith("/console/login")


def test_a_session_idle_longer_than_the_limit_has_ended(console):
    app, keys, _api, _product = console
    browser = app.test_client()
    _login(browser, keys["viewer"])
    assert browser.get("/console/").status_code == 200
    with app.app_context():
        db.session.execute(update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
        db.session.commit()
    response = browser.get("/console/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/login")


def test_using_a_session_within_the_idle_time_keeps_it(console):
    app, keys, _api, _product = console
    browser = app.test_client()
    _login(browser, keys["viewer"])
    with app.app_context():
        db.session.execute(update(ConsoleSession).values(last_seen_at=utcnow() - timedelta(minutes=29)))
        db.session.commit()
    assert browser.get("/console/").status_code == 200
    with app.app_context():
        seen = db.session.scalar(select(ConsoleSession.last_seen_at))
    assert utcnow() - seen < timedelta(minutes=1)  # the idle time starts again
    assert browser.get("/console/stock").status_code == 200


def test_logging_in_again_starts_a_new_session_and_ends_the_old_one(console):
    app, keys, _api, _product = console
    browser, copy = app.test_client(), app.test_client()
    _login(browser, keys["viewer"])
    _copy_cookie(browser, copy)
    _login(browser, keys["operator"])
    assert browser.get("/console/").status_code == 200
    assert copy.get("/console/").status_code == 302
    with app.app_context():
        assert len(db.session.scalars(select(ConsoleSession.id)).all()) == 1


@pytest.fixture
def two_instances(db_url, tmp_path):
    """Two gunicorns (two workers each) on one database, enforcing keys."""
    if SHARED_DATABASE_URL:
        empty_tables(create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url}))
    settings = {"AUTH_REQUIRED": "true", "SESSION_COOKIE_SECURE": "false"}
    servers = [LiveServer(db_url, 2, tmp_path / f"gunicorn-{name}.log", extra_env=settings) for name in "ab"]
    try:
        for server in servers:
            server.wait_ready()
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "AUTO_CREATE_SCHEMA": False})
        with app.app_context():
            key = api_key_service.create_key("柜台", "operator")[1]
            db.engine.dispose()
        yield servers, key
    finally:
        for server in servers:
            server.stop()


def test_a_logout_on_one_instance_ends_the_session_on_every_worker_of_both(two_instances):
    (first, second), key = two_instances
    browser = requests.Session()
    page = browser.get(f"{first.url}/console/login", timeout=20).text
    signed_in = browser.post(f"{first.url}/console/login", data={"api_key": key, "csrf_token": _token(page)},
                             allow_redirects=False, timeout=20)
    assert signed_in.status_code == 302
    cookie = {COOKIE: browser.cookies[COOKIE]}

    def statuses() -> set[int]:  # a new connection each time: each worker of each instance answers some
        return {requests.get(f"{server.url}/console/", cookies=cookie, allow_redirects=False, timeout=20).status_code
                for server in (first, second) for _ in range(6)}

    assert statuses() == {200}
    page = browser.get(f"{second.url}/console/", timeout=20).text
    assert browser.post(f"{second.url}/console/logout", data={"csrf_token": _token(page)},
                        allow_redirects=False, timeout=20).status_code == 302
    assert statuses() == {302}
