"""Who may call what: the one role policy, applied before every request.

A request is identified first (its API key, or the console's login session), then
rate-limited (rate_limits.py), then authorised against POLICY. Views never check
roles themselves, so a new route is covered by its blueprint's row of the table.
"""
import functools
from collections.abc import Mapping
from types import MappingProxyType

from flask import Flask, Request, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface

from routes.parsing import header
from services import api_key_service, console_session_service
from services.api_key_service import Caller
from utils.exceptions import Forbidden, Unauthorized

PUBLIC = None  # no key needed, ever (health probes, the docs)

# (endpoint, or its blueprint, or an endpoint outside a blueprint; HTTP method) → the
# minimum role. An endpoint's own row wins over its blueprint's.
# HEAD is treated as GET; OPTIONS (CORS preflight) is always public.
POLICY: Mapping[tuple[str, str], str | None] = MappingProxyType({
    ("system", "GET"): PUBLIC,  # /, /health, /health/live, /health/ready, /openapi.json
    ("docs", "GET"): PUBLIC,
    ("static", "GET"): PUBLIC,
    ("metrics", "GET"): "viewer",
    ("products", "GET"): "viewer",
    ("products", "POST"): "admin",
    ("products", "PUT"): "admin",
    ("products", "PATCH"): "admin",
    ("products", "DELETE"): "admin",
    ("stock", "GET"): "viewer",
    ("stock", "POST"): "operator",
    ("reservations", "GET"): "viewer",
    ("reservations", "POST"): "operator",
    ("warehouses", "GET"): "viewer",
    ("warehouses", "POST"): "admin",
    ("warehouses", "PUT"): "admin",
    ("warehouses", "PATCH"): "admin",
    ("warehouses", "DELETE"): "admin",
    ("logs", "GET"): "viewer",
    ("events", "GET"): "viewer",
    # Webhooks hold signing secrets and send data out: admins only, reads included.
    ("webhooks", "GET"): "admin",
    ("webhooks", "POST"): "admin",
    ("webhooks", "PATCH"): "admin",
    ("webhooks", "DELETE"): "admin",
    # An import creates and edits products (and counts stock): admin. Exports read.
    ("imports", "POST"): "admin",
    ("exports", "GET"): "viewer",
    # The web console: pages for any role, its stock forms for operators, and (rows
    # for single endpoints override their blueprint's) product upkeep for admins.
    ("console", "GET"): "viewer",
    ("console", "POST"): "operator",
    ("console.logout", "POST"): "viewer",
    ("console.new_product", "GET"): "admin",
    ("console.new_product", "POST"): "admin",
    ("console.edit_product", "GET"): "admin",
    ("console.edit_product", "POST"): "admin",
    ("console.delete_product", "POST"): "admin",
    ("console.webhooks", "GET"): "admin",
    ("console.create_webhook", "POST"): "admin",
    ("console.webhook", "GET"): "admin",
    ("console.test_webhook", "POST"): "admin",
    ("console.new_warehouse", "POST"): "admin",
    ("console.edit_warehouse", "POST"): "admin",
    ("console.mark_default", "POST"): "admin",
    ("console.import_page", "GET"): "admin",
    ("console.import_products", "POST"): "admin",
})  # read-only: required_role caches its answers
# Endpoints open inside a protected area: the console's login page itself.
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})
# Areas whose callers may be remembered by a login session. The JSON API takes keys
# only, so a browser's cookie can never be used against it (no CSRF on the API).
SESSION_AREAS = {"console"}
SESSION_PATH = "/console/"  # where that area is served (sessions open before routing)
SESSION_KEY = "console_session"  # the session's token (services/console_session_service)
# Where the console sends a visitor who is not logged in (when that endpoint exists).
CONSOLE_LOGIN_ENDPOINT = "console.login"
ADMIN = "admin"


def area_of(endpoint: str, blueprint: str | None) -> str:
    return blueprint or endpoint


@functools.cache
def required_role(endpoint: str, blueprint: str | None, method: str) -> str | None:
    """The policy for one route and method; a route the table forgets needs admin.
    POLICY is fixed at import, so each answer is worked out once per worker."""
    if method == "OPTIONS" or endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    method = "GET" if method == "HEAD" else method
    return POLICY.get((endpoint, method), POLICY.get((area_of(endpoint, blueprint), method), ADMIN))


def presented_key(current: Request) -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    scheme, _, credentials = (header(current, "Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return (header(current, "X-API-Key") or "").strip() or None


def current_caller() -> Caller | None:
    """The authenticated caller of this request, or None (anonymous)."""
    return g.get("caller")


def actor_name() -> str | None:
    """The name a change is logged under: the API key's, when one was used."""
    caller = current_caller()
    return caller.name if caller else None


def _required_role_of(current: Request) -> str | None:
    if current.endpoint is None:  # no such route: let it answer 404/405
        return PUBLIC
    return required_role(current.endpoint, current.blueprint, current.method)


# Both hooks run on every request: `g` and `request` are looked up once each, as every
# access through Flask's context proxies costs about a microsecond.
def identify() -> None:
    """Recognise the caller before the rate limiter counts the request. A key that is
    sent must be valid, also while AUTH_REQUIRED is off: a client that believes it
    acts as someone is told it does not, instead of silently acting as anonymous."""
    state, current = g._get_current_object(), request._get_current_object()
    state.caller, state.bad_key = None, False
    state.required_role = _required_role_of(current)
    if state.required_role is PUBLIC:
        return
    token = presented_key(current)
    if token is not None:
        state.caller = api_key_service.authenticate(token)
        state.bad_key = state.caller is None
    elif current.blueprint in SESSION_AREAS and SESSION_KEY in session:
        state.caller = console_session_service.caller_of(session[SESSION_KEY])
        if state.caller is None:
            session.clear()  # logged out, idle too long, or the key revoked since login
    state.api_key_name = state.caller.name if state.caller else None  # for the request log


def authorize():
    """Apply POLICY: 401 without a valid key (when enforced), 403 below the role."""
    state = g._get_current_object()
    role = state.required_role
    if role is PUBLIC:
        return None
    caller = state.caller
    if caller is None:
        if not state.bad_key and not current_app.config["AUTH_REQUIRED"]:
            return None
        if request.blueprint in SESSION_AREAS and CONSOLE_LOGIN_ENDPOINT in current_app.view_functions:
            return redirect(url_for(CONSOLE_LOGIN_ENDPOINT, next=request.full_path))
        raise Unauthorized()
    if not caller.has_role(role):
        raise Forbidden(details={"required_role": role, "role": caller.role})
    return None


def console_login(token: str) -> Caller | None:
    """For the console's login form: start a session for the key's caller and return
    it, or None for an unknown or revoked key. Any role may log in; the policy still
    decides what each page and form allows. A session the browser had ends either way."""
    console_logout()
    caller = api_key_service.authenticate(token.strip())
    if caller is not None:
        session[SESSION_KEY] = console_session_service.start(caller)  # a fresh session at the privilege change
    return caller


def console_logout() -> None:
    """End this browser's session on the server, so that a copy of its cookie is refused too."""
    if SESSION_KEY in session:
        console_session_service.end(session[SESSION_KEY])
    session.clear()


class AreaSessions(SecureCookieSessionInterface):
    """A login session only where one may be used: elsewhere a request neither reads
    nor sets the cookie, and skips the signing machinery it would cost."""

    def open_session(self, app: Flask, request):
        if request.path.startswith(SESSION_PATH):
            return super().open_session(app, request)
        return self.make_null_session(app)


def register_identification(app: Flask) -> None:
    app.session_interface = AreaSessions()
    app.before_request(identify)


def register_authorization(app: Flask) -> None:
    app.before_request(authorize)
