"""`/api/stock`: levels and the three kinds of movement."""
from flask import Blueprint

from routes.parsing import dump, dump_all, json_body, query_args
from schemas.common import PageQuery
from schemas.stock import StockAdjust, StockChange, StockChangeOut, StockOut, StockQuery
from services import stock_service
from utils.response_handler import paginated, success

bp = Blueprint("stock", __name__, url_prefix="/api/stock")


@bp.get("/", strict_slashes=False)
def list_stock():
    page = stock_service.list_stock(query_args(StockQuery))
    return paginated(dump_all(StockOut, page.items), page)


@bp.get("/product/<id:product_id>")
def get_stock(product_id: int):
    return success(dump(StockOut, stock_service.get_stock(product_id)))


@bp.get("/low-stock")
def low_stock():
    query = query_args(PageQuery)
    page = stock_service.list_low_stock(query.page, query.per_page)
    return paginated(dump_all(StockOut, page.items), page)


def _change_response(result, message: str):
    stock, log = result
    return success(dump(StockChangeOut, {"stock": stock, "log": log}), message)


@bp.post("/add")
def add_stock():
    return _change_response(stock_service.add_stock(json_body(StockChange)), "入库成功")


@bp.post("/reduce")
def reduce_stock():
    return _change_response(stock_service.reduce_stock(json_body(StockChange)), "出库成功")


@bp.post("/adjust")
def adjust_stock():
    return _change_response(stock_service.adjust_stock(json_body(StockAdjust)), "调整成功")
