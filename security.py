"""Safe defaults on every response: browser security headers, a Content-Security-Policy
that fits JSON and the Swagger UI page, and CORS only for the configured origins."""
import base64
import hashlib
import re

from flask import Flask, Response
from flask_cors import CORS

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# JSON runs no code and embeds nothing.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Pages (the docs, later the console): own scripts and styles, plus exactly the inline
# scripts this page carries (by hash, so an injected one would not run); Swagger UI
# draws its icons as data: images and sets styles from its scripts.
HTML_CSP = ("default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
            "base-uri 'self'; form-action 'self'")
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
# Headers a browser client may send and read across origins.
CORS_ALLOW_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key", "If-Match", "X-Request-ID"]
CORS_EXPOSE_HEADERS = ["ETag", "Location", "X-Request-ID", "Idempotent-Replayed", "Retry-After", "WWW-Authenticate"]


def _script_hashes(html: bytes) -> str:
    digests = (base64.b64encode(hashlib.sha256(body).digest()).decode() for body in INLINE_SCRIPT.findall(html))
    return " ".join(f"'sha256-{digest}'" for digest in digests)


def content_security_policy(response: Response) -> str:
    if response.mimetype != "text/html" or response.direct_passthrough:
        return JSON_CSP
    return HTML_CSP.format(hashes=_script_hashes(response.get_data()))


def register_security(app: Flask) -> None:
    @app.after_request
    def _security_headers(response: Response) -> Response:
        # A header a view set itself stays. One pass over the names, rather than a
        # lookup per header that raises KeyError for every header still missing.
        present = {name.lower() for name, _ in response.headers}
        for name, value in BASE_HEADERS.items():
            if name.lower() not in present:
                response.headers.add(name, value)
        if "content-security-policy" not in present:
            response.headers.add("Content-Security-Policy", content_security_policy(response))
        return response

    if app.config["CORS_ORIGINS"]:
        CORS(app, resources={r"/api/*": {}, r"/openapi.json": {}}, origins=app.config["CORS_ORIGINS"],
             allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS,
             supports_credentials=False, max_age=600)
