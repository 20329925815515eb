"""`cp .env.example .env` and both entry points (`python main.py`, gunicorn with
gunicorn.conf.py) run on it: each reads the file, and neither starts with database
timeouts that gunicorn would cut short. Run in a copy of the project, so no `.env` is
ever left in the working tree."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT_DIR, _free_port

NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "instance", "__pycache__", ".pytest_cache", ".env", "tests")
# Only what a shell on a fresh machine has: no APP_ENV, PORT or GUNICORN_* from the suite.
BARE_ENVIRONMENT = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the project, without tests or data, where `.env` may be written."""
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=NOT_COPIED)
    return copy


def write_env(project: Path, **settings: str) -> None:
    """`.env.example` copied to `.env`, with the given lines replaced."""
    lines = []
    for line in (project / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        lines.append(f"{name}={settings.pop(name)}" if name in settings else line)
    assert not settings, f"not in .env.example: {sorted(settings)}"
    (project / ".env").write_text("\n".join(lines) + "\n")


def start(project: Path, *command: str) -> subprocess.Popen:
    log = open(project / "server.log", "w")
    return subprocess.Popen([sys.executable, *command], cwd=project, env=BARE_ENVIRONMENT,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(process: subprocess.Popen, project: Path, url: str) -> requests.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {(project / 'server.log').read_text()}")
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered: {(project / 'server.log').read_text()}")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def assert_refuses_to_start(project: Path, *command: str) -> None:
    server = start(project, *command)
    try:
        assert server.wait(timeout=60) != 0
    finally:
        if server.poll() is None:
            stop(server)
    assert "database timeouts too long" in (project / "server.log").read_text()


def test_env_example_carries_timeouts_under_gunicorns(project):
    write_env(project)
    result = subprocess.run(
        [sys.executable, "-c", "import json, main; c = main.app.config; "
                               "print(json.dumps([c['SQLITE_BUSY_TIMEOUT'], c['DB_READ_TIMEOUT'], c['REQUEST_TIMEOUT']]))"],
        cwd=project, env=BARE_ENVIRONMENT, capture_output=True, text=True, check=True)
    busy, read, worker_timeout = json.loads(result.stdout.splitlines()[-1])
    assert 2 * busy < worker_timeout and 2 * read + 3 < worker_timeout


def test_the_dev_server_listens_where_env_says_and_logs_plain_json(project):
    port = _free_port()
    write_env(project, PORT=str(port))
    server = start(project, "main.py")
    try:
        assert wait_for(server, project, f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        stop(server)
    lines = [json.loads(line) for line in (project / "server.log").read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "werkzeug" and "/health" in line["message"] for line in lines)
    assert not any("\x1b" in line["message"] for line in lines)  # no terminal colours inside the JSON


def test_gunicorn_binds_and_sizes_itself_from_env(project):
    port = _free_port()
    write_env(project, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2")
    server = start(project, "-m", "gunicorn", "--config", "gunicorn.conf.py", "main:app")
    try:
        assert wait_for(server, project, f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        stop(server)
    assert (project / "server.log").read_text().count("Booting worker") == 2


@pytest.mark.parametrize("unsafe", [{"SQLITE_BUSY_TIMEOUT": "15"}, {"GUNICORN_TIMEOUT": "20"}])
@pytest.mark.parametrize("entry_point", [("main.py",), ("-m", "gunicorn", "--config", "gunicorn.conf.py", "main:app")],
                         ids=["dev server", "gunicorn"])
def test_both_entry_points_refuse_timeouts_that_reach_gunicorns(project, unsafe, entry_point):
    write_env(project, PORT=str(_free_port()), GUNICORN_BIND=f"127.0.0.1:{_free_port()}", **unsafe)
    assert_refuses_to_start(project, *entry_point)


def test_gunicorn_refuses_a_command_line_timeout_the_database_waits_outlast(project):
    """`-t` is gunicorn's own: the workers check it against the app's timeouts (2 × 10 s)."""
    write_env(project, GUNICORN_BIND=f"127.0.0.1:{_free_port()}", GUNICORN_WORKERS="1")
    assert_refuses_to_start(project, "-m", "gunicorn", "--config", "gunicorn.conf.py", "-t", "15", "main:app")
