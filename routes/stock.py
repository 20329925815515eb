"""`/api/stock`: levels, the three kinds of movement, batches and past levels."""
from flask import Blueprint

from routes.idempotency import idempotent
from routes.parsing import dump, dump_all, json_body, query_args
from schemas.common import PageQuery
from schemas.stock import StockAdjust, StockBatch, StockChange, StockChangeOut, StockOut, StockPointOut, StockPointQuery, StockQuery
from services import stock_service
from utils.response_handler import paginated, success

bp = Blueprint("stock", __name__, url_prefix="/api/stock")


@bp.get("/", strict_slashes=False)
def list_stock():
    page = stock_service.list_stock(query_args(StockQuery))
    return paginated(dump_all(StockOut, page.items), page)


@bp.get("/product/<id:product_id>")
def get_stock(product_id: int):
    point = query_args(StockPointQuery)
    if point.as_of is None and point.as_of_seq is None:
        return success(dump(StockOut, stock_service.get_stock(product_id)))
    answer = StockPointOut.model_validate(stock_service.stock_at(product_id, point))
    return success(answer.model_dump(mode="json", exclude_none=True))


@bp.get("/low-stock")
def low_stock():
    query = query_args(PageQuery)
    page = stock_service.list_low_stock(query.page, query.per_page)
    return paginated(dump_all(StockOut, page.items), page)


def _change_response(result, message: str):
    stock, log = result
    return success(dump(StockChangeOut, {"stock": stock, "log": log}), message)


@bp.post("/add")
@idempotent
def add_stock():
    return _change_response(stock_service.add_stock(json_body(StockChange)), "入库成功")


@bp.post("/reduce")
@idempotent
def reduce_stock():
    return _change_response(stock_service.reduce_stock(json_body(StockChange)), "出库成功")


@bp.post("/adjust")
@idempotent
def adjust_stock():
    return _change_response(stock_service.adjust_stock(json_body(StockAdjust)), "调整成功")


@bp.post("/batch")
@idempotent
def batch():
    batch = json_body(StockBatch)
    result = stock_service.apply_batch(batch)
    return success(result.model_dump(mode="json"), "预演完成，未提交" if batch.dry_run else "批量操作成功")
