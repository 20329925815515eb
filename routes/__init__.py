"""HTTP layer: blueprints that parse requests, call a service and answer the envelope."""
from flask import Flask
from flask_swagger_ui import get_swaggerui_blueprint
from werkzeug.routing import BaseConverter

from security import add_page_policy


class IdConverter(BaseConverter):
    """A positive id that fits a 64-bit column; anything else is simply not a route (404)."""

    regex = r"[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


def register_blueprints(app: Flask) -> None:
    from routes.bulk import exports, imports
    from routes.console import bp as console_bp
    from routes.events import bp as events_bp
    from routes.logs import bp as logs_bp
    from routes.products import bp as products_bp
    from routes.reservations import bp as reservations_bp
    from routes.stock import bp as stock_bp
    from routes.system import bp as system_bp
    from routes.warehouses import bp as warehouses_bp
    from routes.webhooks import bp as webhooks_bp

    app.url_map.converters["id"] = IdConverter
    for blueprint in (system_bp, products_bp, stock_bp, reservations_bp, warehouses_bp, logs_bp, events_bp, webhooks_bp,
                      imports, exports, console_bp):
        app.register_blueprint(blueprint)
    # Interactive docs, served from the installed package: they work offline.
    # The OAuth redirect is fixed (no OAuth is used): by default it is built from the
    # request's Host, which would make the page's inline script differ per host, and
    # the page policy allows that script by the hash it has at start-up.
    docs = get_swaggerui_blueprint("/docs", "/openapi.json", blueprint_name="docs", config={
        "app_name": "库存管理服务 API", "oauth2RedirectUrl": "/docs/oauth2-redirect.html"})
    docs.after_request(add_page_policy)
    app.register_blueprint(docs)
