"""`/api/logs`: the movement ledger, read-only."""
from flask import Blueprint

from routes.parsing import dump, dump_all, query_args
from schemas.common import PageQuery
from schemas.log import LogOut, LogQuery, StatisticsQuery, VerifyQuery
from services import ledger_service, log_service
from utils.response_handler import paginated, success

bp = Blueprint("logs", __name__, url_prefix="/api/logs")


@bp.get("/", strict_slashes=False)
def list_logs():
    page = log_service.list_logs(query_args(LogQuery))
    return paginated(dump_all(LogOut, page.items), page)


@bp.get("/<id:log_id>")
def get_log(log_id: int):
    return success(dump(LogOut, log_service.get_log(log_id)))


@bp.get("/product/<id:product_id>")
def product_logs(product_id: int):
    query = query_args(PageQuery)
    page = log_service.product_logs(product_id, query.page, query.per_page)
    return paginated(dump_all(LogOut, page.items), page)


@bp.get("/statistics")
def statistics():
    return success(log_service.statistics(query_args(StatisticsQuery)))


@bp.get("/actions")
def actions():
    return success(log_service.list_actions())


@bp.get("/verify")
def verify():
    return success(ledger_service.verify(query_args(VerifyQuery).product_id))
