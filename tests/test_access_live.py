"""Access control and rate limits under real gunicorn: one budget per key shared by
every worker through Redis, and no key ever echoed in an answer or a log line."""
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.mmap_dict import MmapedDict
from redis import Redis
from redis.exceptions import RedisError

from db import db
from main import create_app
from services import api_key_service
from tests.conftest import SHARED_DATABASE_URL, LiveServer, empty_tables

REDIS_URL = "redis://127.0.0.1:6379"
LIMIT = 10


def _redis() -> Redis:
    client = Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except RedisError:
        pytest.skip(f"no Redis at {REDIS_URL} (redis-server --daemonize yes --port 6379)")
    return client


def _served_per_worker(metrics_dir: Path, path: str) -> list[float]:
    """Requests to `path` each worker answered, from its own metrics file."""
    counts = []
    for file in sorted(metrics_dir.glob("counter_*.db")):
        values = MmapedDict.read_all_values_from_file(str(file))
        counts.append(sum(value for key, value, *_ in values
                          if json.loads(key)[2].get("endpoint") == path and json.loads(key)[1].endswith("_total")))
    return counts


def _wait_for_both_workers(server) -> None:
    """wait_ready saw one worker; under load the second may still be booting."""
    metrics_dir = server.log_path.parent / f"metrics-{server.port}"
    deadline = time.monotonic() + 60
    while len(_served_per_worker(metrics_dir, "/health")) < 2:
        assert time.monotonic() < deadline, "the second worker never answered"
        with ThreadPoolExecutor(4) as pool:  # /health is never rate-limited
            list(pool.map(lambda _: requests.get(f"{server.url}/health", timeout=20), range(8)))


@pytest.fixture
def secured_server(tmp_path, db_url):
    """Two workers enforcing keys, counting in Redis under a prefix of this run only."""
    redis = _redis()
    prefix = f"inventory-test-{uuid.uuid4().hex}"
    if SHARED_DATABASE_URL:
        empty_tables(create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url}))
    server = LiveServer(db_url, 2, tmp_path / "gunicorn.log", extra_env={
        "AUTH_REQUIRED": "true", "RATELIMIT_ENABLED": "true", "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": prefix, "RATELIMIT_VIEWER": f"{LIMIT} per hour",
    })
    try:
        server.wait_ready()
        _wait_for_both_workers(server)
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "AUTO_CREATE_SCHEMA": False})
        with app.app_context():
            server.keys = {role: api_key_service.create_key(f"live-{role}", role)[1] for role in ("viewer", "operator")}
            server.revoked = api_key_service.create_key("live-revoked", "admin")
            api_key_service.revoke_key(server.revoked[0].id)
            server.revoked = server.revoked[1]
            db.engine.dispose()
        server.prefix = prefix
        yield server
    finally:
        server.stop()
        for key in redis.scan_iter(f"*{prefix}*"):
            redis.delete(key)


def test_the_limit_holds_across_workers_and_no_key_is_echoed(secured_server):
    url, keys = secured_server.url, secured_server.keys
    viewer = {"Authorization": f"Bearer {keys['viewer']}"}

    def get(_):
        return requests.get(f"{url}/api/stock/", headers=viewer, timeout=20)  # a new connection each time

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(get, range(3 * LIMIT)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == LIMIT, statuses  # one budget, not one per worker
    assert statuses.count(429) == 2 * LIMIT
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "RATE_LIMITED"
            assert 1 <= int(response.headers["Retry-After"]) <= 3600
    metrics_dir = secured_server.log_path.parent / f"metrics-{secured_server.port}"
    per_worker = _served_per_worker(metrics_dir, "/api/stock/")
    assert len(per_worker) == 2 and min(per_worker) > 0, f"both workers should have served: {per_worker}"
    assert list(_redis().scan_iter(f"*{secured_server.prefix}*")), "the counters live in Redis"

    # Other callers are not held back by the viewer's spent budget; refusals echo nothing.
    operator = {"X-API-Key": keys["operator"]}
    responses += [
        requests.get(f"{url}/api/stock/", headers=operator, timeout=20),
        requests.post(f"{url}/api/products/", json={"name": "x", "sku": "X", "price": 1}, headers=operator, timeout=20),
        requests.get(f"{url}/api/stock/", headers={"Authorization": f"Bearer {secured_server.revoked}"}, timeout=20),
        requests.get(f"{url}/api/stock/", timeout=20),
    ]
    assert [r.status_code for r in responses[-4:]] == [200, 403, 401, 401]
    assert responses[-1].headers["WWW-Authenticate"].startswith("Bearer")
    secrets = [*keys.values(), secured_server.revoked]
    for response in responses:
        echoed = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
        assert not any(secret in echoed for secret in secrets)
    log = secured_server.log_path.read_text()
    assert '"user": "live-viewer"' in log  # the log names who called …
    assert not any(secret in log for secret in secrets)  # … and never with what
    assert "Traceback" not in log
