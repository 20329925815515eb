"""Service description, health, and the API's own description."""
from flask import Blueprint, current_app, jsonify, redirect, request, url_for
from sqlalchemy.exc import OperationalError

from config import VERSION
from openapi_spec import document_for, operation
from schemas.system import HealthOut, IndexOut, LiveOut, ReadyOut
from services import health_service
from utils.exceptions import NodeNotReady, ServiceUnavailable
from utils.response_handler import success

bp = Blueprint("system", __name__)


def _browser_wants_html() -> bool:
    """A browser's Accept prefers text/html; API clients (JSON, `*/*`, none) do not."""
    accept = request.accept_mimetypes
    return accept.quality("text/html") > accept.quality("application/json")


@bp.get("/")
@operation(summary="服务名称、版本和链接", tag="system", data=IndexOut,
           description="浏览器（Accept 中 text/html 优先于 application/json）会被 302 重定向到网页控制台 /console/。")
def index():
    if _browser_wants_html():
        response = redirect(url_for("console.dashboard"), 302)
        response.headers["Vary"] = "Accept"
        return response
    response = success({
        "name": "库存管理服务 (inventory service)",
        "version": VERSION,
        "links": {
            "docs": "/docs/",
            "openapi": "/openapi.json",
            "products": "/api/products/",
            "stock": "/api/stock/",
            "logs": "/api/logs/",
            "health": "/health",
            "console": "/console/",
        },
    })
    response.headers["Vary"] = "Accept"
    return response


@bp.get("/health")
@operation(summary="健康检查（数据库可达）", tag="system", data=HealthOut)
def health():
    if not health_service.database_reachable():
        raise ServiceUnavailable(details={"database": "unreachable"})
    return success({"status": "ok", "database": "ok", "version": VERSION})


@bp.get("/health/live")
@operation(summary="存活探针（进程在运行）", tag="system", data=LiveOut)
def live():
    return success({"status": "alive"})


@bp.get("/health/ready")
@operation(summary="就绪探针（数据库可达、Galera 节点已同步、迁移为最新、可以写入）", tag="system", data=ReadyOut)
def ready():
    try:
        cluster = health_service.cluster_state()
    except OperationalError as exc:
        if health_service.node_not_ready(exc):
            raise NodeNotReady(details={"cluster": {"synced": False}}) from None
        raise ServiceUnavailable(details={"database": "unreachable"}) from None
    if cluster is not None and not cluster["synced"]:
        raise NodeNotReady(details={"cluster": cluster})
    if not health_service.database_reachable():
        raise ServiceUnavailable(details={"database": "unreachable"})
    migrations = health_service.migration_state()
    if not migrations["up_to_date"]:
        raise ServiceUnavailable("数据库迁移不是最新，请运行 flask --app main db upgrade", {"migrations": migrations})
    if not health_service.database_writable():
        raise ServiceUnavailable("数据库无法写入（磁盘空间不足或文件只读）", {"database": "not writable"})
    ready_state = {"status": "ready", "database": "ok", "migrations": migrations}
    return success(ready_state if cluster is None else {**ready_state, "cluster": cluster})


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 document (built once per process)."""
    return jsonify(document_for(current_app))
