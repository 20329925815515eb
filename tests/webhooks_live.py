"""Webhooks live, for the tests: a small receiver (a real HTTP server in a thread that
records each request and answers as scripted: a status, or a stall longer than the
timeout) and the real worker process, `flask --app main webhooks run`."""
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    started: float
    status: int = 0
    ended: float = 0.0


@dataclass
class Receiver:
    """Answers `statuses` in turn (then 200), or what `decide(body)` says when given; a
    status of `"stall"` sleeps `stall` seconds first."""

    statuses: list = field(default_factory=list)
    stall: float = 0.0
    decide: Callable[[bytes], int | str] | None = None
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self):
        receiver = self
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                started = time.monotonic()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    if receiver.decide is not None:
                        answer = receiver.decide(body)
                    else:
                        answer = receiver.statuses.pop(0) if receiver.statuses else 200
                if answer == "stall":
                    time.sleep(receiver.stall)
                    answer = 200
                entry = Received(self.path, dict(self.headers), body, started, answer)
                try:
                    self.send_response(answer)
                    if 300 <= answer < 400:
                        self.send_header("Location", receiver.url + "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting
                entry.ended = time.monotonic()
                with receiver.lock:
                    receiver.requests.append(entry)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[Received]:
        """Every request, in the order they were answered."""
        with self.lock:
            return list(self.requests)

    def delivered(self) -> list[Received]:
        """Requests answered 2xx."""
        return [entry for entry in self.received() if 200 <= entry.status < 300]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Workers:
    """`flask --app main webhooks run` processes with the given environment; `stop()` ends
    them with SIGTERM and checks they exited cleanly, without a traceback."""

    def __init__(self, directory: Path, env: dict):
        self.directory, self.env, self.processes = directory, env, []

    def start(self, **env) -> subprocess.Popen:
        log = self.directory / f"worker-{len(self.processes)}.log"
        process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "main", "webhooks", "run"],
                                   cwd=PROJECT_DIR, env={**os.environ, **self.env, **env},
                                   stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.processes.append((process, log))
        return process

    def stop(self) -> None:
        for process, log in self.processes:
            process.terminate()
            assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
            assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
