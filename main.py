"""Application factory and the `app` that `gunicorn main:app` and `flask --app main` load."""
import os
from collections.abc import Callable
from inspect import CO_COROUTINE

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix

import models  # noqa: F401  (registers the tables with the metadata)
from commands import register_commands
from config import check_production_settings, check_request_budget, config_for
from db import MIGRATIONS_DIR, db, migrate
from db.engine import engine_options
from db.reads import register_read_engine
from db.schema import create_schema
from db.sqlite import register_sqlite_setup
from error_handlers import register_error_handlers
from observability import configure_logging, register_observability
from rate_limits import register_rate_limits
from routes import register_blueprints
from routes.access import register_authorization, register_identification
from security import register_page_policy, register_security
from utils.display_time import register_display_zone
from utils.json_provider import OrjsonProvider
from utils.request_id import register_request_id
from utils.response_handler import success


class InventoryApp(Flask):
    """Flask with two per-request costs taken out: responses are encoded by orjson, and
    whether a view or hook is a coroutine is read from its code object's flags, as
    `inspect.iscoroutinefunction` reads them for a function or a bound method (asked
    several times a request, ~5 µs in all through `inspect`). Anything else (a partial,
    a callable object, a function marked with `inspect.markcoroutinefunction` on Python
    3.12+) goes through Flask's own check. Nothing is remembered, so callbacks made per
    request cost no memory."""

    json_provider_class = OrjsonProvider

    def ensure_sync(self, func: Callable) -> Callable:
        function = getattr(func, "__func__", func)
        code = getattr(function, "__code__", None)
        if code is not None and not code.co_flags & CO_COROUTINE and not hasattr(function, "_is_coroutine_marker"):
            return func
        return super().ensure_sync(func)

    def make_default_options_response(self) -> Response:
        """`OPTIONS` answers in the envelope as well (every answer under /api is JSON):
        the methods the path allows, in `data.allow` and the `Allow` header."""
        allowed = super().make_default_options_response().allow
        response = success({"allow": sorted(allowed)})
        response.allow.update(allowed)
        return response


def create_app(config_name: str | None = None, overrides: dict | None = None) -> Flask:
    """Build the app for `config_name` (default: `APP_ENV`, else development)."""
    app = InventoryApp(__name__)
    app.config.from_object(config_for(config_name))
    app.config.update(overrides or {})
    if app.config["APP_ENV"] == "production":
        check_production_settings(app.config)
    check_request_budget(app.config, app.config["REQUEST_TIMEOUT"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(app.config)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"] == "json")
    register_display_zone(app)
    if app.config["PROXY_HOPS"]:
        # Behind Nginx: take client address, scheme and host from X-Forwarded-*.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    register_sqlite_setup(app)
    register_read_engine(app)
    register_request_id(app)
    register_observability(app)
    register_security(app)
    # Order matters: know the caller, count the request against its budget, then decide.
    register_identification(app)
    register_rate_limits(app)
    register_authorization(app)
    register_blueprints(app)
    register_page_policy(app)
    register_error_handlers(app)
    register_commands(app)
    if app.config["AUTO_CREATE_SCHEMA"]:
        create_schema(app)
    _log_access_control(app)
    return app


def _log_access_control(app: Flask) -> None:
    """Say at start-up whether anyone who can reach the service may change stock (also
    under a `flask` command: the configuration it runs with is the one served)."""
    if app.config["AUTH_REQUIRED"]:
        app.logger.info("access control: on (AUTH_REQUIRED=true): API keys required")
    else:
        app.logger.warning("access control: OFF (AUTH_REQUIRED=false): with this configuration, anyone who "
                           "can reach the service may change stock; set AUTH_REQUIRED=true and create keys "
                           "with `flask --app main keys create`")


app = create_app()

if __name__ == "__main__":
    with app.app_context():
        app.logger.info("database: %s", db.engine.url.render_as_string(hide_password=True))
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "5000")),
        debug=app.config["DEBUG"],
    )
