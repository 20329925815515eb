"""gunicorn's own answers to requests it cannot hand to the app (a request line over
`limit_request_line`, malformed or too many headers) in the app's JSON envelope with a
request id, instead of gunicorn's HTML page: every answer is JSON, as SPEC §2 promises.

gunicorn writes these through `gunicorn.util.write_error`; `install()` (called from
gunicorn.conf.py, so every worker forked or started afterwards has it) replaces it."""
import json

from gunicorn import util

from utils.request_id import new_request_id

# status → (error.code, message); any other status gunicorn answers keeps its reason.
ANSWERS = {
    400: ("VALIDATION_ERROR", "请求格式错误"),
    403: ("FORBIDDEN", "禁止访问"),
    414: ("URI_TOO_LONG", "请求地址过长（请求行上限 8190 字节）"),
    431: ("HEADERS_TOO_LARGE", "请求头过大"),
}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """`util.write_error`'s signature and behaviour (write, then the connection closes)."""
    code, message = ANSWERS.get(status_int, (f"HTTP_{status_int}", reason))
    body = json.dumps({"success": False, "message": message, "error": {"code": code, "details": {}}},
                      ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"X-Request-ID: {new_request_id()}\r\nX-Content-Type-Options: nosniff\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    util.write_error = write_json_error
