"""Safe defaults on every response: browser security headers, a Content-Security-Policy
that fits JSON and the Swagger UI page, and CORS only for the configured origins."""
import base64
import hashlib
import re

from flask import Flask, Response, current_app
from flask_cors import CORS

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# JSON runs no code and embeds nothing.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Pages (the docs, the console): own scripts and styles, plus exactly the inline scripts
# the templates themselves carry, by hash; Swagger UI draws its icons as data: images and
# sets styles from its scripts.
HTML_CSP = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
# The pages whose templates carry an inline script (the Swagger UI's set-up); the console's
# pages carry none. Each is rendered once at start-up and its scripts are hashed.
PAGES_WITH_INLINE_SCRIPTS = ("/docs/",)
# Headers a browser client may send and read across origins.
CORS_ALLOW_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["ETag", "Location", "X-Request-ID", "Idempotent-Replayed", "Retry-After", "WWW-Authenticate"]


def _script_hashes(html: bytes) -> list[str]:
    return [f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
            for body in INLINE_SCRIPT.findall(html)]


def register_page_policy(app: Flask) -> None:
    """Work out the pages' policy once, from the templates' own inline scripts: never
    from a page as it is sent, or a script that slipped into one would be allowed by the
    policy itself. Rendered without the request hooks (no caller, no rate limit)."""
    hashes: list[str] = []
    for path in PAGES_WITH_INLINE_SCRIPTS:
        with app.test_request_context(path):
            hashes += _script_hashes(app.make_response(app.dispatch_request()).get_data())
    app.extensions["page_policy"] = HTML_CSP.format(hashes=" ".join(dict.fromkeys(hashes)))


def page_policy() -> str:
    """The Content-Security-Policy of every HTML page of this app."""
    return current_app.extensions["page_policy"]


def add_page_policy(response: Response) -> Response:
    """An after_request hook for the blueprints that serve pages (the console, the
    docs): HTML gets the page policy, unless the view set its own. Only there, so a
    JSON request does not pay for looking at its content type."""
    if (response.content_type or "").startswith("text/html") and "Content-Security-Policy" not in response.headers:
        response.headers["Content-Security-Policy"] = page_policy()
    return response


class SecurityHeaders:
    """WSGI middleware: BASE_HEADERS and the JSON policy on every response that does
    not carry its own. A list of constant pairs is appended as it goes out, rather than
    set through the response's Headers, which validates every value again on each
    request (docs/performance.md: "What the code does for speed")."""

    def __init__(self, wsgi_app, defaults: dict[str, str]):
        self.wsgi_app = wsgi_app
        self.defaults = tuple((name.lower(), name, value) for name, value in defaults.items())

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers.extend((name, value) for lower, name, value in self.defaults if lower not in present)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def register_security(app: Flask) -> None:
    app.wsgi_app = SecurityHeaders(app.wsgi_app, {**BASE_HEADERS, "Content-Security-Policy": JSON_CSP})

    if app.config["CORS_ORIGINS"]:
        CORS(app, resources={r"/api/*": {}, r"/openapi.json": {}}, origins=app.config["CORS_ORIGINS"],
             allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS,
             supports_credentials=False, max_age=600)
