"""`X-Request-ID` on every response: the client's own when it is sane, else a new one;
and the instant each request came in, for its latency."""
import re
import secrets
import time

from flask import Flask, Request

HEADER = "X-Request-ID"
ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
ENVIRON_KEY = "inventory.request_id"
STARTED_KEY = "inventory.started"  # time.perf_counter() as the request came in


def new_request_id() -> str:
    """128 random bits as 32 hex digits."""
    return secrets.token_hex(16)


def request_id_of(current: Request) -> str | None:
    """The id this request is answered and logged with."""
    return current.environ.get(ENVIRON_KEY)


def seconds_since_start(current: Request) -> float:
    """How long the request has taken so far (0 where the middleware did not run)."""
    now = time.perf_counter()
    return now - current.environ.get(STARTED_KEY, now)


class RequestIds:
    """WSGI middleware: picks the id as the request comes in and appends it to the
    response's headers as they go out (no view sets this header). Outside Flask's
    hooks it costs neither a context lookup nor werkzeug's validation of a header
    value, and every answer carries it, an unhandled error's too."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        environ[STARTED_KEY] = time.perf_counter()  # here, not in a before_request hook: one hook less a request
        sent = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = environ[ENVIRON_KEY] = sent if ACCEPTED.fullmatch(sent) else new_request_id()

        def start(status, headers, exc_info=None):
            headers.append((HEADER, request_id))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def register_request_id(app: Flask) -> None:
    app.wsgi_app = RequestIds(app.wsgi_app)
