"""Rate limits: one budget per caller, sized by role; what a caller without a key gets
depends on whether keys are required; on in production, off in development unless set."""
import json
import os
import subprocess
import sys

import pytest

from db import db
from tests.conftest import PROJECT_DIR
from tests.test_access_control import bearer, issue_keys, make_app


@pytest.fixture
def limited_app(db_url):
    app = make_app(db_url, RATELIMIT_ENABLED=True, RATELIMIT_ANONYMOUS="1 per minute",
                   RATELIMIT_OPERATOR="3 per minute", RATELIMIT_VIEWER="2 per minute")
    yield app
    with app.app_context():
        db.engine.dispose()


def test_over_the_limit_answers_429_with_retry_after(limited_app):
    client = limited_app.test_client()
    statuses = [client.get("/api/logs/actions").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/stock/")  # one budget for the whole API, not per route
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "RATE_LIMITED" and limited.get_json()["success"] is False
    assert 1 <= int(limited.headers["Retry-After"]) <= 60  # what is left of the window, rounded up
    assert client.get("/health").status_code == 200  # probes are never limited


def test_retry_after_is_what_is_left_of_the_window(db_url):
    app = make_app(db_url, RATELIMIT_ENABLED=True, RATELIMIT_OPERATOR="1 per minute")
    client = app.test_client()
    assert client.get("/api/logs/actions").status_code == 200
    limited = client.get("/api/logs/actions")
    assert limited.status_code == 429
    assert 58 <= int(limited.headers["Retry-After"]) <= 60  # a minute, less the moment since the first
    with app.app_context():
        db.engine.dispose()


def test_each_key_has_its_own_budget_sized_by_role(limited_app):
    keys = issue_keys(limited_app)
    client = limited_app.test_client()
    viewer = [client.get("/api/stock/", headers=bearer(keys["viewer"])).status_code for _ in range(3)]
    assert viewer == [200, 200, 429]
    admin = [client.get("/api/stock/", headers=bearer(keys["admin"])).status_code for _ in range(5)]
    assert admin == [200] * 5  # RATELIMIT_ADMIN's default is far higher
    assert client.get("/api/stock/").status_code == 200  # callers without a key count apart


def test_without_required_keys_a_keyless_client_has_the_operator_budget(limited_app):
    """Keys not required: every client is keyless and does real work, so the anonymous
    budget (1 a minute here) would throttle it; it gets the operator's (3)."""
    client = limited_app.test_client()
    statuses = [client.post("/api/products/", json={"name": "商品", "sku": f"K-{n}", "price": 1}).status_code
                for n in range(4)]
    assert statuses == [201, 201, 201, 429]


def test_with_required_keys_a_keyless_caller_has_the_anonymous_budget(db_url):
    """Keys required: a caller without one can only be refused, so it is slowed down early."""
    app = make_app(db_url, AUTH_REQUIRED=True, RATELIMIT_ENABLED=True, RATELIMIT_ANONYMOUS="2 per minute",
                   RATELIMIT_OPERATOR="100 per minute")
    keys = issue_keys(app)
    client = app.test_client()
    assert [client.get("/api/stock/").status_code for _ in range(3)] == [401, 401, 429]
    assert client.get("/api/stock/", headers=bearer(keys["operator"])).status_code == 200
    with app.app_context():
        db.engine.dispose()


def _limits_enabled(app_env: str, **environment: str) -> bool:
    """RATELIMIT_ENABLED as a fresh process reads it for `app_env` (config classes read
    the environment once, at import)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RATELIMIT_")}
    code = f"import json, config; print(json.dumps(config.config_for({app_env!r}).RATELIMIT_ENABLED))"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env={**env, **environment},
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.parametrize("app_env, environment, enabled", [
    ("production", {}, True),
    ("production", {"RATELIMIT_ENABLED": "false"}, False),
    ("development", {}, False),
    ("development", {"RATELIMIT_ENABLED": ""}, False),
    ("development", {"RATELIMIT_ENABLED": "true"}, True),
])
def test_limits_are_on_in_production_and_off_in_development_unless_set(app_env, environment, enabled):
    assert _limits_enabled(app_env, **environment) is enabled
