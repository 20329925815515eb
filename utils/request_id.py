"""`X-Request-ID` on every response: the client's own when it is sane, else a new one."""
import re
import secrets

from flask import Flask, g, request

HEADER = "X-Request-ID"
ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def new_request_id() -> str:
    """128 random bits as 32 hex digits."""
    return secrets.token_hex(16)


def register_request_id(app: Flask) -> None:
    # On every request: each attribute read through Flask's context proxies (`request.x`,
    # `g.get`) costs about a microsecond, so the current objects are looked up once.
    @app.before_request
    def _assign() -> None:
        sent = request._get_current_object().headers.get(HEADER, "")
        g.request_id = sent if ACCEPTED.fullmatch(sent) else new_request_id()

    @app.after_request
    def _echo(response):
        response.headers[HEADER] = g._get_current_object().get("request_id") or new_request_id()
        return response
