"""`/api/logs`: the movement ledger, read-only."""
from flask import Blueprint

from openapi_spec import operation
from routes.parsing import dump, dump_all, query_args
from schemas.log import (
    ActionOut,
    LedgerPageQuery,
    LogOut,
    LogQuery,
    StatisticsOut,
    StatisticsQuery,
    VerifyOut,
    VerifyQuery,
)
from services import ledger_service, log_service, statistics_service
from utils.response_handler import paginated, success

bp = Blueprint("logs", __name__, url_prefix="/api/logs")


@bp.get("/", strict_slashes=False)
@operation(summary="流水列表（新的在前）", tag="logs", data=LogOut, query=LogQuery, paginated=True, ledger=True)
def list_logs():
    page = log_service.list_logs(query_args(LogQuery))
    return paginated(dump_all(LogOut, page.items), page)


@bp.get("/<id:log_id>")
@operation(summary="单条流水", tag="logs", data=LogOut)
def get_log(log_id: int):
    return success(dump(LogOut, log_service.get_log(log_id)))


@bp.get("/product/<id:product_id>")
@operation(summary="商品的流水（商品删除后仍可查）", tag="logs", data=LogOut, query=LedgerPageQuery, paginated=True,
           ledger=True)
def product_logs(product_id: int):
    page = log_service.product_logs(product_id, query_args(LedgerPageQuery))
    return paginated(dump_all(LogOut, page.items), page)


@bp.get("/statistics")
@operation(summary="流水统计", tag="logs", data=StatisticsOut, query=StatisticsQuery)
def statistics():
    return success(dump(StatisticsOut, statistics_service.statistics(query_args(StatisticsQuery))))


@bp.get("/actions")
@operation(summary="流水动作及中文名", tag="logs", data=list[ActionOut])
def actions():
    return success(log_service.list_actions())


@bp.get("/verify")
@operation(summary="校验流水哈希链与库存", tag="logs", data=VerifyOut, query=VerifyQuery,
           errors=("NOT_FOUND",))
def verify():
    return success(ledger_service.verify(query_args(VerifyQuery).product_id))
