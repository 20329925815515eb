"""The web console under `/console/`: server-rendered pages that parse forms, call
the same services as the JSON API and render templates from `templates/console/`."""
from flask import Blueprint

from routes.files import allow_uploads
from security import add_page_policy

bp = Blueprint("console", __name__, url_prefix="/console")
bp.before_request(allow_uploads)  # registered first: before the CSRF check reads the body
bp.after_request(add_page_policy)

# The views register themselves on `bp` when imported.
from routes.console import (  # noqa: E402, F401
    bulk,
    common,
    dashboard,
    logs,
    products,
    reservations,
    session,
    stock,
    warehouses,
    webhooks,
)
