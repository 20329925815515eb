"""Slow clients: 30 connections that send their headers or their body one byte every
two seconds. A gunicorn sync worker reads a request itself, so each one it accepts holds
it: faced directly, a handful of them starve every worker. The shipped Nginx site reads
whole requests first and passes on only complete ones, so behind it liveness probes
keep answering (docs/operations.md: "Production")."""
import socket
import threading
import time

import pytest
import requests

from tests.conftest import NGINX_MISSING, LiveServer, NginxProxy

DRIBBLERS = 30
DRIP_SECONDS = 2
PROBES = 8
PROBE_TIMEOUT = 2  # seconds: a live process answers /health/live in milliseconds


class Dribblers:
    """Half of them send a request's headers one byte at a time; the other half send
    whole headers, then the body one byte at a time."""

    def __init__(self, port: int):
        self.port = port
        self.sockets: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._drip, daemon=True)

    def start(self) -> None:
        for number in range(DRIBBLERS):
            connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            if number % 2:  # a body of 1000 bytes, never finished
                connection.sendall(b"POST /api/stock/add HTTP/1.1\r\nHost: inventory\r\n"
                                   b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            self.sockets.append(connection)
        self.thread.start()

    def _drip(self) -> None:
        headers = b"GET /health/live HTTP/1.1\r\nHost: inventory\r\nX-Slow: " + b"x" * 1000
        sent = 0
        while not self.stopped.is_set():
            for number, connection in enumerate(self.sockets):
                try:
                    connection.send(b" " if number % 2 else headers[sent:sent + 1])
                except OSError:  # the server gave up on it: that is allowed
                    pass
            sent += 1
            self.stopped.wait(DRIP_SECONDS)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        for connection in self.sockets:
            connection.close()


def probe_liveness(url: str, probes: int) -> list[str]:
    """Liveness probes, one every half second; what became of each."""
    outcomes = []
    for _ in range(probes):
        started = time.monotonic()
        try:
            outcomes.append(str(requests.get(f"{url}/health/live", timeout=PROBE_TIMEOUT).status_code))
        except requests.RequestException as exc:
            outcomes.append(type(exc).__name__)
        time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))
    return outcomes


def probes_while_dribbling(url: str, port: int, probes: int = PROBES) -> list[str]:
    dribblers = Dribblers(port)
    dribblers.start()
    try:
        time.sleep(DRIP_SECONDS)  # every connection has sent something by now
        return probe_liveness(url, probes)
    finally:
        dribblers.stop()


@pytest.fixture
def two_instances(live_server, db_url, tmp_path):
    """The suite's gunicorn and a second one, one sync worker each."""
    second = LiveServer(db_url, 1, tmp_path / "gunicorn-second.log")
    try:
        second.wait_ready()
        yield live_server, second
    finally:
        second.stop()


@pytest.mark.workers(1)
@pytest.mark.skipif(NGINX_MISSING, reason="nginx not installed")
def test_behind_nginx_slow_clients_never_reach_the_workers(two_instances, tmp_path):
    (tmp_path / "nginx").mkdir()
    proxy = NginxProxy(list(two_instances), tmp_path / "nginx")
    try:
        outcomes = probes_while_dribbling(proxy.url, proxy.port)
    finally:
        proxy.stop()
    assert outcomes == ["200"] * PROBES


@pytest.mark.workers(2)
def test_faced_directly_slow_clients_starve_the_sync_workers(live_server):
    """Why gunicorn must never face clients: the same dribblers, sent to it directly,
    hold both its workers, and liveness probes go unanswered."""
    outcomes = probes_while_dribbling(live_server.url, live_server.port, probes=3)
    assert "200" not in outcomes, outcomes
