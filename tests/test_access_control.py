"""API keys, the role policy over every route, per-key idempotency and who is logged."""
import re

import pytest
from sqlalchemy import select

from db import db
from main import create_app
from models import ApiKey, StockLog
from routes.access import POLICY, PUBLIC_ENDPOINTS, area_of, current_caller, identify, required_role
from services import api_key_service
from tests.conftest import SHARED_DATABASE_URL, empty_tables

CALLERS = (None, "viewer", "operator", "admin")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _route_methods():
    """Every (rule, endpoint, blueprint, method) the app serves, from its URL map."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": "sqlite://", "AUTO_CREATE_SCHEMA": False})
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append(pytest.param(rule.rule, rule.endpoint, blueprint, method, id=f"{method} {rule.rule}"))
    return found


ROUTES = _route_methods()


def make_app(db_url: str, **overrides):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, **overrides})
    if SHARED_DATABASE_URL:
        empty_tables(app)
    return app


@pytest.fixture
def secure_app(db_url):
    app = make_app(db_url, AUTH_REQUIRED=True)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def issue_keys(app) -> dict[str, str]:
    """One key per role, named after it; returns role → key."""
    with app.app_context():
        return {role: api_key_service.create_key(f"{role}-key", role)[1] for role in CALLERS if role}


@pytest.fixture
def keys(secure_app):
    return issue_keys(secure_app)


def bearer(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.mark.parametrize("rule, endpoint, blueprint, method", ROUTES)
def test_every_route_has_an_explicit_policy(rule, endpoint, blueprint, method):
    explicit = (endpoint, method) in POLICY or (area_of(endpoint, blueprint), method) in POLICY
    assert explicit or endpoint in PUBLIC_ENDPOINTS, (
        f"{method} {rule} is not in routes.access.POLICY; add its row")


def test_identifying_a_caller_leaves_the_request_without_a_transaction(secure_app, keys):
    """A list page starts its own snapshot (services/transaction.begin_snapshot); had
    the key lookup begun the request's transaction, the page would read in another."""
    with secure_app.test_request_context("/api/products/", headers=bearer(keys["viewer"])):
        identify()
        assert current_caller().name == "viewer-key"
        assert not db.session().in_transaction()


@pytest.mark.parametrize("rule, endpoint, blueprint, method", ROUTES)
def test_role_matrix(secure_app, keys, rule, endpoint, blueprint, method):
    client = secure_app.test_client()
    product = client.post("/api/products/", json={"name": "矩阵", "sku": "M-1", "price": 1, "initial_quantity": 5},
                          headers=bearer(keys["admin"]))
    assert product.status_code == 201
    log_id = client.get("/api/logs/", headers=bearer(keys["viewer"])).get_json()["data"]["items"][0]["id"]
    ids = {"product_id": product.get_json()["data"]["id"], "log_id": log_id, "warehouse_id": 1, "path": "index.css",
           "filename": "missing.txt", "action": "in", "webhook_id": 1, "reservation_id": 1}
    url = re.sub(r"<(?:[^:>]+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule)
    needed = required_role(endpoint, blueprint, method)
    for caller in CALLERS:
        kwargs = {"json": {}} if method in WRITE_METHODS - {"DELETE"} else {}
        response = client.open(url, method=method, headers=bearer(keys.get(caller)), **kwargs)
        console = blueprint == "console"
        if needed is None or (caller and api_key_service.ROLES.index(caller) >= api_key_service.ROLES.index(needed)):
            assert response.status_code not in (401, 403), (caller, response.get_data(as_text=True))
        elif caller is None and console:  # a browser is sent to the login page
            assert response.status_code == 302 and "/console/login" in response.headers["Location"]
        elif caller is None:
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "UNAUTHORIZED"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        elif console:  # a friendly page, not JSON
            assert response.status_code == 403 and response.mimetype == "text/html"
        else:
            assert response.status_code == 403
            assert response.get_json()["error"] == {"code": "FORBIDDEN", "details": {"required_role": needed, "role": caller}}


@pytest.mark.parametrize("rule, endpoint, blueprint, method", ROUTES)
def test_the_document_states_the_policy(secure_app, rule, endpoint, blueprint, method):
    from openapi_spec import build_document

    path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)
    operation = build_document(secure_app)["paths"].get(path, {}).get(method.lower())
    if operation is None:  # undocumented: the docs page, the document itself, metrics
        return
    assert operation.get("x-required-role") == required_role(endpoint, blueprint, method)
    assert ("401" in operation["responses"]) == (operation["security"] != [])


def test_both_headers_carry_a_key(secure_app, keys):
    client = secure_app.test_client()
    assert client.get("/api/stock/", headers={"X-API-Key": keys["viewer"]}).status_code == 200
    assert client.get("/api/stock/", headers={"Authorization": f"bearer {keys['viewer']}"}).status_code == 200
    assert client.get("/api/stock/", headers={"Authorization": f"Basic {keys['viewer']}"}).status_code == 401


def test_unknown_and_revoked_keys_are_refused(secure_app, keys):
    client = secure_app.test_client()
    unknown = client.get("/api/stock/", headers=bearer("inv_not-a-real-key"))
    assert unknown.status_code == 401 and unknown.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert client.get("/api/stock/", headers=bearer(keys["operator"])).status_code == 200
    with secure_app.app_context():
        key_id = db.session.scalar(select(ApiKey.id).where(ApiKey.name == "operator-key"))
    result = secure_app.test_cli_runner().invoke(args=["keys", "revoke", str(key_id)])
    assert result.exit_code == 0, result.output
    assert client.get("/api/stock/", headers=bearer(keys["operator"])).status_code == 401
    listed = secure_app.test_cli_runner().invoke(args=["keys", "list"]).output
    assert "operator-key" not in listed and "viewer-key" in listed


def test_health_stays_open_when_enforced(secure_app):
    client = secure_app.test_client()
    for path in ("/health", "/health/live", "/health/ready", "/", "/openapi.json", "/docs/"):
        assert client.get(path).status_code not in (401, 403), path
    assert client.get("/health", headers=bearer("inv_garbage")).status_code == 200


def test_cli_prints_the_key_once_and_stores_only_its_hash(secure_app):
    runner = secure_app.test_cli_runner()
    result = runner.invoke(args=["keys", "create", "--name", "仓库A", "--role", "operator"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("inv_") and len(token) >= 40
    with secure_app.app_context():
        row = db.session.scalar(select(ApiKey).where(ApiKey.name == "仓库A"))
        stored = [str(getattr(row, column.key)) for column in ApiKey.__table__.columns]
    assert token not in " ".join(stored) and token.startswith(row.prefix) and len(row.prefix) <= 12
    listed = runner.invoke(args=["keys", "list"]).output
    assert row.prefix in listed and token not in listed
    assert secure_app.test_client().get("/api/stock/", headers=bearer(token)).status_code == 200
    bad_role = runner.invoke(args=["keys", "create", "--name", "x", "--role", "root"])
    assert bad_role.exit_code == 2


def test_access_control_off_still_checks_a_sent_key(client, app):
    keys = issue_keys(app)
    assert client.post("/api/products/", json={"name": "开放", "sku": "OPEN-1", "price": 1}).status_code == 201
    assert client.get("/api/stock/", headers=bearer("inv_typo")).status_code == 401
    assert client.post("/api/stock/add", json={"product_id": 1, "quantity": 1},
                       headers=bearer(keys["viewer"])).status_code == 403


def test_a_change_made_with_a_key_is_logged_under_its_name(secure_app, keys):
    client = secure_app.test_client()
    created = client.post("/api/products/", json={"name": "记名", "sku": "WHO-1", "price": 1, "initial_quantity": 2},
                          headers=bearer(keys["admin"]))
    pid = created.get_json()["data"]["id"]
    body = {"product_id": pid, "quantity": 3, "reason": "入库", "operator": "张三"}
    log = client.post("/api/stock/add", json=body, headers=bearer(keys["operator"])).get_json()["data"]["log"]
    assert (log["operator"], log["on_behalf_of"]) == ("operator-key", "张三")
    plain = client.post("/api/stock/add", json={**body, "operator": None}, headers=bearer(keys["operator"]))
    logged = plain.get_json()["data"]["log"]
    assert (logged["operator"], logged["on_behalf_of"]) == ("operator-key", None)
    batch = client.post("/api/stock/batch", json={"changes": [{**body, "action": "reduce"}]}, headers=bearer(keys["operator"]))
    assert batch.get_json()["data"]["results"][0]["log"]["operator"] == "operator-key"
    with secure_app.app_context():
        operators = db.session.execute(select(StockLog.operator).order_by(StockLog.id)).scalars().all()
    assert operators == ["admin-key", "operator-key", "operator-key", "operator-key"]
    assert client.get("/api/logs/verify", headers=bearer(keys["viewer"])).get_json()["data"]["problems"] == []


def test_without_a_key_the_client_names_the_operator(client, create_product):
    pid = create_product()["id"]
    log = client.post("/api/stock/add", json={"product_id": pid, "quantity": 1, "operator": "张三"}).get_json()["data"]["log"]
    assert (log["operator"], log["on_behalf_of"]) == ("张三", None)


def test_idempotency_keys_are_scoped_per_api_key(secure_app, keys):
    client = secure_app.test_client()
    pid = client.post("/api/products/", json={"name": "幂等", "sku": "IDEM-1", "price": 1},
                      headers=bearer(keys["admin"])).get_json()["data"]["id"]
    body = {"product_id": pid, "quantity": 2}
    same_key = {"Idempotency-Key": "shared-retry-key"}
    first = client.post("/api/stock/add", json=body, headers={**bearer(keys["operator"]), **same_key})
    other = client.post("/api/stock/add", json=body, headers={**bearer(keys["admin"]), **same_key})
    again = client.post("/api/stock/add", json=body, headers={**bearer(keys["operator"]), **same_key})
    assert "Idempotent-Replayed" not in first.headers and "Idempotent-Replayed" not in other.headers
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_data() == first.get_data()
    assert other.get_json()["data"]["stock"]["quantity"] == 4


def test_startup_log_says_whether_access_control_is_on(db_url, caplog):
    caplog.set_level("INFO", logger="main")
    make_app(db_url)
    assert any("access control: OFF" in r.getMessage() for r in caplog.records)
    caplog.clear()
    make_app(db_url, AUTH_REQUIRED=True)
    assert any("access control: on" in r.getMessage() for r in caplog.records)
