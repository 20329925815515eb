"""`X-Request-ID` on every response: the client's own when it is sane, else a new one."""
import re
import uuid

from flask import Flask, g, request

HEADER = "X-Request-ID"
ACCEPTED = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def register_request_id(app: Flask) -> None:
    @app.before_request
    def _assign() -> None:
        sent = request.headers.get(HEADER, "")
        g.request_id = sent if ACCEPTED.fullmatch(sent) else uuid.uuid4().hex

    @app.after_request
    def _echo(response):
        response.headers[HEADER] = g.get("request_id") or uuid.uuid4().hex
        return response
