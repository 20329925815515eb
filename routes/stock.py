"""`/api/stock`: levels, the three kinds of movement, batches and past levels."""
from flask import Blueprint

from openapi_spec import operation
from routes.access import actor_name
from routes.idempotency import idempotent
from routes.parsing import dump, dump_all, json_body, query_args
from schemas.stock import (
    BatchOut,
    LowStockQuery,
    ProductStockOut,
    StockAdjust,
    StockBatch,
    StockChange,
    StockChangeOut,
    StockOut,
    StockPointOut,
    StockPointQuery,
    StockQuery,
    StockTransfer,
    TransferOut,
    WarehouseStockOut,
)
from services import stock_service
from utils.response_handler import paginated, success

bp = Blueprint("stock", __name__, url_prefix="/api/stock")

BATCH_EXAMPLE = {
    "changes": [
        {"action": "add", "product_id": 1, "quantity": 20, "reason": "采购入库", "operator": "张三"},
        {"action": "reduce", "product_id": 2, "quantity": 3, "reason": "销售出库", "expected_quantity": 10},
        {"action": "adjust", "product_id": 3, "quantity": 7, "reason": "盘点", "warehouse_id": 1},
        {"action": "transfer", "product_id": 1, "from_warehouse_id": 1, "to_warehouse_id": 2, "quantity": 5,
         "reason": "门店补货"},
    ],
    "dry_run": False,
}


@bp.get("/", strict_slashes=False)
@operation(summary="库存列表", tag="stock", data=StockOut, query=StockQuery, paginated=True)
def list_stock():
    page = stock_service.list_stock(query_args(StockQuery))
    return paginated(dump_all(StockOut, page.items), page)


@bp.get("/product/<id:product_id>")
@operation(summary="商品库存（总数及各仓库存）；给 as_of 或 as_of_seq 时为当时的库存（加 warehouse_id 为该仓的）",
           tag="stock", data=ProductStockOut | StockPointOut, query=StockPointQuery)
def get_stock(product_id: int):
    point = query_args(StockPointQuery)
    if point.as_of is None and point.as_of_seq is None:
        return success(dump(ProductStockOut, stock_service.get_stock(product_id)))
    answer = StockPointOut.model_validate(stock_service.stock_at(product_id, point))
    return success(answer.model_dump(mode="json", exclude_none=True))


@bp.get("/low-stock")
@operation(summary="低库存列表（缺口大者在前；给 warehouse_id 时为该仓的低库存）", tag="stock",
           data=StockOut | WarehouseStockOut, query=LowStockQuery, paginated=True, errors=("NOT_FOUND",))
def low_stock():
    query = query_args(LowStockQuery)
    page = stock_service.list_low_stock(query)
    return paginated(dump_all(StockOut if query.warehouse_id is None else WarehouseStockOut, page.items), page)


def _change_response(result, message: str):
    stock, log = result
    return success(dump(StockChangeOut, {"stock": stock, "log": log}), message)


@bp.post("/add")
@operation(summary="入库", tag="stock", data=StockChangeOut, body=StockChange, errors=("NOT_FOUND", "CONFLICT"),
           example={"product_id": 1, "quantity": 50, "reason": "初始入库", "operator": "张三", "warehouse_id": 1})
@idempotent
def add_stock():
    return _change_response(stock_service.add_stock(json_body(StockChange), actor_name()), "入库成功")


@bp.post("/reduce")
@operation(summary="出库", tag="stock", data=StockChangeOut, body=StockChange,
           errors=("NOT_FOUND", "INSUFFICIENT_STOCK", "CONFLICT"),
           example={"product_id": 1, "quantity": 5, "reason": "销售出库", "operator": "李四"})
@idempotent
def reduce_stock():
    return _change_response(stock_service.reduce_stock(json_body(StockChange), actor_name()), "出库成功")


@bp.post("/adjust")
@operation(summary="盘点调整（quantity 为实盘数）", tag="stock", data=StockChangeOut, body=StockAdjust,
           errors=("NOT_FOUND", "CONFLICT"),
           example={"product_id": 1, "quantity": 48, "min_quantity": 10, "reason": "月末盘点", "operator": "王五"})
@idempotent
def adjust_stock():
    return _change_response(stock_service.adjust_stock(json_body(StockAdjust), actor_name()), "调整成功")


@bp.post("/transfer")
@operation(summary="调拨（从一个仓库移到另一个，总数不变）", tag="stock", data=TransferOut, body=StockTransfer,
           errors=("NOT_FOUND", "INSUFFICIENT_STOCK", "CONFLICT"),
           example={"product_id": 1, "from_warehouse_id": 1, "to_warehouse_id": 2, "quantity": 10,
                    "reason": "门店补货", "operator": "张三"})
@idempotent
def transfer():
    result = stock_service.transfer_stock(json_body(StockTransfer), actor_name())
    return success(dump(TransferOut, result), "调拨成功")


@bp.post("/batch")
@operation(summary="批量变动（全部成功或全部不做）", tag="stock", data=BatchOut, body=StockBatch,
           errors=("NOT_FOUND", "INSUFFICIENT_STOCK", "CONFLICT"), example=BATCH_EXAMPLE)
@idempotent
def batch():
    batch = json_body(StockBatch)
    result = stock_service.apply_batch(batch, actor_name())
    return success(result.model_dump(mode="json"), "预演完成，未提交" if batch.dry_run else "批量操作成功")
