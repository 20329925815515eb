"""Service description and health."""
from flask import Blueprint, current_app
from sqlalchemy import text

from database import db
from utils.exceptions import ServiceUnavailable
from utils.response_handler import success

bp = Blueprint("system", __name__)

VERSION = "1.0.0"


@bp.get("/")
def index():
    return success(
        {
            "name": "库存管理服务 (inventory service)",
            "version": VERSION,
            "links": {
                "products": "/api/products/",
                "stock": "/api/stock/",
                "logs": "/api/logs/",
                "health": "/health",
            },
        }
    )


@bp.get("/health")
def health():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer means "not healthy", never a 500
        current_app.logger.warning("health check failed: %s", exc)
        db.session.rollback()
        raise ServiceUnavailable(details={"database": "unreachable"}) from None
    return success({"status": "ok", "database": "ok", "version": VERSION})
