"""`/api/logs`: the movement ledger, read-only."""
from flask import Blueprint, current_app

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
from utils.work_slots import WorkSlots

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
@operation(summary="校验流水哈希链与库存（按商品分页）", tag="logs", data=VerifyOut, query=VerifyQuery,
           errors=("NOT_FOUND", "RATE_LIMITED"),
           description="Each call checks one page: products in id order, then the daily totals in chunks of "
                       "days, stopping after the product or chunk that reaches VERIFY_PAGE_ROWS ledger rows or "
                       "VERIFY_PAGE_SECONDS. Follow `next_after` as `after`, or `next_after_day` as `after_day`, "
                       "until `complete`; the pages of a walk add up to the whole ledger's report. At most "
                       "VERIFY_CONCURRENCY calls run at once per host; others answer 429 `RATE_LIMITED` with "
                       "Retry-After at once.")
def verify():
    query = query_args(VerifyQuery)
    config = current_app.config
    slots = WorkSlots("verify", config["SQLALCHEMY_DATABASE_URI"], config["VERIFY_CONCURRENCY"],
                      "已有流水校验正在进行，请稍后重试")
    budget = ledger_service.Budget(rows=config["VERIFY_PAGE_ROWS"], seconds=config["VERIFY_PAGE_SECONDS"])
    with slots.hold():
        return success(ledger_service.verify(query.product_id, query.after or 0, query.after_day, budget))
