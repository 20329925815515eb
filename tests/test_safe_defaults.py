"""Security headers, CORS, production start-up checks and the console login hook."""
import base64
import hashlib
import re

import pytest
from flask import Response
from sqlalchemy import select

from config import check_request_budget
from db import db
from main import create_app
from models import ApiKey
from security import add_page_policy
from services import api_key_service
from tests.test_access_control import bearer, issue_keys, make_app


def test_security_headers_on_every_response(client):
    for response in (client.get("/api/stock/"), client.get("/nope"), client.post("/api/stock/add", data="x")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_each_security_header_is_sent_once_and_a_views_own_stays(app, client):
    app.add_url_rule("/api/_framed", "framed", lambda: ("ok", 200, {"X-Frame-Options": "SAMEORIGIN"}))
    for response in (client.get("/api/stock/"), client.get("/api/_framed")):
        for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"):
            assert len(response.headers.getlist(name)) == 1, name
    assert client.get("/api/_framed").headers["X-Frame-Options"] == "SAMEORIGIN"


def test_html_error_pages_get_the_page_policy(client):
    missing = client.get("/console/no-such-page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert missing.headers.getlist("Content-Security-Policy") == [missing.headers["Content-Security-Policy"]]
    assert missing.headers["Content-Security-Policy"].startswith("default-src 'self'")


def test_docs_csp_allows_exactly_its_own_inline_script(client):
    page = client.get("/docs/")
    csp = page.headers["Content-Security-Policy"]
    inline = re.findall(rb"<script>(.*?)</script>", page.get_data(), re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0]).digest()).decode()
    assert f"'sha256-{digest}'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp


def _policy_hash(script: bytes) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"


def test_the_page_policy_never_allows_a_script_found_in_a_page(app):
    """Only the templates' own inline scripts, hashed at start-up: a script that slipped
    into a rendered page is not allowed by the very policy sent with it."""
    with app.test_request_context("/console/"):
        page = add_page_policy(Response("<p>商品</p><script>alert(1)</script>", mimetype="text/html"))
    assert _policy_hash(b"alert(1)") not in page.headers["Content-Security-Policy"]


def test_every_page_carries_the_one_policy_made_at_start_up(client):
    policies = {client.get(path).headers["Content-Security-Policy"]
                for path in ("/docs/", "/console/", "/console/products", "/console/no-such-page")}
    assert len(policies) == 1


@pytest.mark.parametrize("host", ["localhost", "inventory.example.com:8443"])
def test_the_docs_script_is_allowed_whatever_host_the_page_is_asked_on(client, host):
    page = client.get("/docs/", headers={"Host": host})
    (script,) = re.findall(rb"<script>(.*?)</script>", page.get_data(), re.DOTALL)
    assert _policy_hash(script) in page.headers["Content-Security-Policy"]


def test_cors_only_for_configured_origins(db_url, client):
    assert "Access-Control-Allow-Origin" not in client.get("/api/stock/", headers={"Origin": "https://evil.example"}).headers
    app = make_app(db_url, CORS_ORIGINS=["https://shop.example"], AUTH_REQUIRED=True)
    cors = app.test_client()
    allowed = cors.get("/api/stock/", headers={"Origin": "https://shop.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Access-Control-Allow-Origin" not in cors.get("/api/stock/", headers={"Origin": "https://evil.example"}).headers
    preflight = cors.options("/api/stock/add", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key"})
    assert preflight.status_code == 200  # no key needed to ask
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


@pytest.mark.parametrize("overrides, complaint", [
    ({"SECRET_KEY": "dev-only-change-me"}, "SECRET_KEY"),
    ({"SECRET_KEY": ""}, "SECRET_KEY"),
    ({"SECRET_KEY": "a-real-secret-0123456789", "DEBUG": True}, "FLASK_DEBUG"),
])
def test_production_refuses_unsafe_settings(db_url, overrides, complaint):
    with pytest.raises(RuntimeError, match=complaint):
        create_app("production", {"SQLALCHEMY_DATABASE_URI": db_url, "AUTO_CREATE_SCHEMA": False, **overrides})


@pytest.mark.parametrize("config_name", ["development", "production"])
@pytest.mark.parametrize("overrides", [
    {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLITE_BUSY_TIMEOUT": 15},  # its turn, then the file lock: 2 × 15 s
    {"REQUEST_TIMEOUT": 20},  # GUNICORN_TIMEOUT below the 2 × 10 s of the defaults
    {"SQLALCHEMY_DATABASE_URI": "mysql+pymysql://inventory@127.0.0.1:1/inventory", "DB_READ_TIMEOUT": 14},
    {"SQLALCHEMY_DATABASE_URI": "mysql+pymysql://inventory@127.0.0.1:1/inventory", "DB_CONNECT_TIMEOUT": 10},
    {"SQLALCHEMY_DATABASE_URI": "mysql+pymysql://inventory@127.0.0.1:1/inventory", "DB_RETRY_BUDGET": 7},
], ids=["sqlite busy", "gunicorn timeout", "mysql read", "mysql connect", "mysql retries"])
def test_database_waits_that_reach_gunicorns_timeout_are_refused(db_url, config_name, overrides):
    """Read + connect + read again and the retries after deadlocks (MySQL), or two turns of
    the busy timeout (SQLite), must end before gunicorn kills the worker, or a client gets
    its HTML 500 instead of a 503."""
    settings = {"SQLALCHEMY_DATABASE_URI": db_url, "AUTO_CREATE_SCHEMA": False,
                "SECRET_KEY": "a-real-secret-0123456789", **overrides}
    with pytest.raises(RuntimeError, match="database timeouts too long"):
        create_app(config_name, settings)


def test_database_waits_just_under_gunicorns_timeout_are_accepted():
    check_request_budget({"SQLALCHEMY_DATABASE_URI": "mysql+pymysql://inventory@db/inventory",
                          "DB_READ_TIMEOUT": 10, "DB_CONNECT_TIMEOUT": 3, "DB_RETRY_BUDGET": 6}, 30)  # 29 s
    check_request_budget({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLITE_BUSY_TIMEOUT": 14}, 30)  # 28 s


def test_production_enforces_access_control_by_default(db_url, monkeypatch):
    app = create_app("production", {"SQLALCHEMY_DATABASE_URI": db_url, "AUTO_CREATE_SCHEMA": False,
                                    "SECRET_KEY": "a-real-secret-0123456789"})
    assert app.config["AUTH_REQUIRED"] is True and app.config["SESSION_COOKIE_SECURE"] is True


def _csrf_token(browser, path: str = "/console/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', browser.get(path).get_data(as_text=True)).group(1)


def _login(browser, key: str, next_path: str = ""):
    return browser.post("/console/login", data={"api_key": key, "next": next_path, "csrf_token": _csrf_token(browser)})


def test_console_asks_for_a_key_and_remembers_it_only_for_the_console(db_url):
    app = make_app(db_url, AUTH_REQUIRED=True)
    keys = issue_keys(app)
    browser = app.test_client()
    first = browser.get("/console/stock")
    assert first.status_code == 302 and "/console/login?next=" in first.headers["Location"]
    assert _login(browser, "inv_wrong").status_code == 401
    signed_in = _login(browser, keys["viewer"], "/console/stock")
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/console/stock")
    assert "viewer-key" in browser.get("/console/").get_data(as_text=True)
    # The session cookie is for the console only: the JSON API still wants a key.
    assert browser.get("/api/stock/").status_code == 401
    with app.app_context():
        api_key_service.revoke_key(db.session.scalar(select(ApiKey.id).where(ApiKey.name == "viewer-key")))
    assert browser.get("/console/").status_code == 302  # revoked: logged out at once


def test_console_login_never_redirects_off_the_console(db_url):
    app = make_app(db_url, AUTH_REQUIRED=True)
    keys = issue_keys(app)
    browser = app.test_client()
    response = _login(browser, keys["viewer"], "https://evil.example/")
    assert response.headers["Location"].endswith("/console/")


def test_console_changes_follow_the_keys_role_and_are_logged_under_its_name(db_url):
    app = make_app(db_url, AUTH_REQUIRED=True)
    keys = issue_keys(app)
    api = app.test_client()
    product_id = api.post("/api/products/", json={"name": "控制台", "sku": "C-1", "price": 1},
                          headers=bearer(keys["admin"])).get_json()["data"]["id"]
    viewer, operator = app.test_client(), app.test_client()
    _login(viewer, keys["viewer"])
    _login(operator, keys["operator"])
    form = {"product_id": product_id, "quantity": 5, "reason": "入库", "operator": "小王"}
    refused = viewer.post("/console/stock/in", data={**form, "csrf_token": _csrf_token(viewer, "/console/stock")})
    assert refused.status_code == 403
    accepted = operator.post("/console/stock/in", data={**form, "csrf_token": _csrf_token(operator, "/console/stock")})
    assert accepted.status_code == 302
    assert operator.get("/console/products/new").status_code == 403  # product upkeep is for admins
    log = api.get(f"/api/logs/product/{product_id}", headers=bearer(keys["viewer"])).get_json()["data"]["items"][0]
    assert (log["quantity"], log["operator"], log["on_behalf_of"]) == (5, "operator-key", "小王")
    for page in ("/console/logs", f"/console/products/{product_id}"):  # who typed it in is shown too
        assert re.search(r"operator-key\s*<span[^>]*>代 小王</span>", operator.get(page).get_data(as_text=True)), page
