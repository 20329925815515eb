"""Schemathesis runs every check it has against the live app under gunicorn, with access
control off and again on (with an admin key): no server errors; statuses, headers and
bodies as the document says; requests the document calls valid accepted and those it
calls invalid refused; and, with keys required, every protected operation refusing a
request without a key or with a wrong one.

Two settings say what a schema cannot (tests/schemathesis.toml: 412 and 422 answer
well-formed requests that meet an unexpected state, as 409 does; tests/schemathesis_hooks.py:
the thresholds' order, fresh Idempotency-Keys, no invented cursors, no undeclared names)."""
import os
import re
import subprocess
import sys

import pytest
import requests

from db import db
from main import create_app
from services import api_key_service
from tests.conftest import PROJECT_DIR, SHARED_DATABASE_URL, LiveServer, empty_tables

SETTINGS = PROJECT_DIR / "tests" / "schemathesis.toml"
HOOKS = PROJECT_DIR / "tests" / "schemathesis_hooks.py"


@pytest.fixture(params=[False, True], ids=["keys not required", "keys required"])
def fuzzed_server(request, tmp_path, db_url):
    """gunicorn with two workers; with keys required, `admin_key` is the fuzzer's."""
    if SHARED_DATABASE_URL:
        empty_tables(create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url}))
    server = LiveServer(db_url, 2, tmp_path / "gunicorn.log",
                        extra_env={"AUTH_REQUIRED": "true" if request.param else "false"})
    try:
        server.wait_ready()
        server.admin_key = None
        if request.param:
            app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "AUTO_CREATE_SCHEMA": False})
            with app.app_context():
                server.admin_key = api_key_service.create_key("fuzzer", "admin")[1]
                db.engine.dispose()
        yield server
    finally:
        server.stop()


def test_schemathesis_with_every_check_finds_no_failure(fuzzed_server, tmp_path):
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(SETTINGS),
        "run", f"{fuzzed_server.url}/openapi.json",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", os.environ.get("FUZZ_EXAMPLES", "100"),
        "--seed", os.environ.get("FUZZ_SEED", "20261124"),
        # One worker: with two threads, CPython 3.11.7 can fail inside hypothesis's
        # lambda introspection ("AST constructor recursion depth mismatch").
        "--workers", "1",
        "--request-timeout", "20",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    if fuzzed_server.admin_key:
        command += ["--header", f"Authorization: Bearer {fuzzed_server.admin_key}"]
    environment = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PYTHONPATH": str(PROJECT_DIR)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=environment)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failure" not in result.stdout.split("SUMMARY")[-1]
    if fuzzed_server.admin_key:  # the authentication checks sent requests without the key, refused
        assert '"status": 401' in fuzzed_server.log_path.read_text()
    assert "Traceback" not in fuzzed_server.log_path.read_text()


@pytest.mark.workers(1)
def test_gunicorn_answers_a_request_line_too_long_in_the_envelope(live_server):
    """gunicorn refuses it before the app sees it; the answer is still the JSON envelope."""
    response = requests.get(f"{live_server.url}/api/products/", params={"q": "长" * 1000}, timeout=20)
    assert response.status_code == 414
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {"success": False, "message": "请求地址过长（请求行上限 8190 字节）",
                               "error": {"code": "URI_TOO_LONG", "details": {}}}
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert requests.get(f"{live_server.url}/api/products/", params={"q": "长" * 100}, timeout=20).status_code == 200
