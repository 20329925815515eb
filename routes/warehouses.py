"""`/api/warehouses`: the places stock is kept, and each one's stock."""
from flask import Blueprint, url_for

from openapi_spec import operation
from routes.parsing import dump, dump_all, json_body, query_args
from schemas.stock import StockQuery, WarehouseStockOut
from schemas.system import DeletedOut
from schemas.warehouse import WarehouseCreate, WarehouseOut, WarehouseQuery, WarehouseUpdate
from services import stock_service, warehouse_service
from utils.response_handler import paginated, success

bp = Blueprint("warehouses", __name__, url_prefix="/api/warehouses")


@bp.get("/", strict_slashes=False)
@operation(summary="仓库列表", tag="warehouses", data=WarehouseOut, query=WarehouseQuery, paginated=True)
def list_warehouses():
    page = warehouse_service.list_warehouses(query_args(WarehouseQuery))
    return paginated(dump_all(WarehouseOut, page.items), page)


@bp.post("/", strict_slashes=False)
@operation(summary="创建仓库", tag="warehouses", data=WarehouseOut, body=WarehouseCreate, status=201,
           errors=("DUPLICATE",), example={"code": "SH-01", "name": "上海一号仓", "address": "上海市浦东新区"})
def create_warehouse():
    warehouse = warehouse_service.create_warehouse(json_body(WarehouseCreate))
    location = url_for("warehouses.get_warehouse", warehouse_id=warehouse.id)
    return success(dump(WarehouseOut, warehouse), "创建成功", 201, {"Location": location})


@bp.get("/<id:warehouse_id>")
@operation(summary="仓库详情", tag="warehouses", data=WarehouseOut)
def get_warehouse(warehouse_id: int):
    return success(dump(WarehouseOut, warehouse_service.get_warehouse(warehouse_id)))


@bp.route("/<id:warehouse_id>", methods=["PUT", "PATCH"])
@operation(summary="修改仓库（只改所给字段；is_default: true 设为默认仓库）", tag="warehouses", data=WarehouseOut,
           body=WarehouseUpdate, errors=("DUPLICATE", "CONFLICT"), example={"name": "上海中心仓", "is_default": True})
def update_warehouse(warehouse_id: int):
    warehouse = warehouse_service.update_warehouse(warehouse_id, json_body(WarehouseUpdate))
    return success(dump(WarehouseOut, warehouse), "更新成功")


@bp.delete("/<id:warehouse_id>")
@operation(summary="删除仓库（默认仓库或仍有库存时 409）", tag="warehouses", data=DeletedOut, errors=("CONFLICT",))
def delete_warehouse(warehouse_id: int):
    warehouse_service.delete_warehouse(warehouse_id)
    return success({"id": warehouse_id}, "删除成功")


@bp.get("/<id:warehouse_id>/stock")
@operation(summary="仓库的库存列表", tag="warehouses", data=WarehouseStockOut, query=StockQuery, paginated=True)
def warehouse_stock(warehouse_id: int):
    page = stock_service.list_warehouse_stock(warehouse_id, query_args(StockQuery))
    return paginated(dump_all(WarehouseStockOut, page.items), page)
