"""Warehouses: the list with create, edit and the default mark, and one warehouse's stock."""
from flask import flash, redirect, render_template, request, url_for

from routes.console import bp
from routes.console.common import PER_PAGE, describe, form_payload, parse, query_or_errors
from schemas.stock import StockQuery
from schemas.warehouse import WarehouseCreate, WarehouseUpdate
from services import stock_service, warehouse_service
from utils.exceptions import AppError

FIELDS = {"code": "text", "name": "text", "address": "text"}


@bp.get("/warehouses")
def warehouses():
    return _list_page()


@bp.post("/warehouses")
def new_warehouse():
    """Create a warehouse, validated exactly as `POST /api/warehouses/`."""
    data, errors = parse(WarehouseCreate, form_payload(FIELDS))
    if data is None:
        return _list_page("请检查标出的字段", errors, 400)
    try:
        created = warehouse_service.create_warehouse(data)
    except AppError as exc:
        message, errors = describe(exc)
        if exc.code == "DUPLICATE":
            errors = {"code": "该编码已被其他仓库使用"}
        return _list_page(message, errors, exc.status)
    flash(f"已创建仓库「{created.name}」", "success")
    return redirect(url_for("console.warehouses"))


@bp.get("/warehouses/<id:warehouse_id>")
def warehouse(warehouse_id: int):
    """One warehouse: its edit form and its stock (the filters and sorts of the API's list)."""
    return _warehouse_page(warehouse_id, warehouse_service.get_warehouse(warehouse_id))


@bp.post("/warehouses/<id:warehouse_id>")
def edit_warehouse(warehouse_id: int):
    item = warehouse_service.get_warehouse(warehouse_id)
    payload = {field: request.form.get(field, "").strip() or None for field in FIELDS}
    data, errors = parse(WarehouseUpdate, {key: value for key, value in payload.items() if key == "address" or value})
    if data is None:
        return _warehouse_page(warehouse_id, item, "请检查标出的字段", errors, 400)
    try:
        warehouse_service.update_warehouse(warehouse_id, data)
    except AppError as exc:
        message, errors = describe(exc)
        return _warehouse_page(warehouse_id, item, message, errors, exc.status)
    flash("仓库已保存", "success")
    return redirect(url_for("console.warehouse", warehouse_id=warehouse_id))


@bp.post("/warehouses/<id:warehouse_id>/default")
def mark_default(warehouse_id: int):
    """Move the default mark: writes that name no warehouse go here from now on."""
    marked = warehouse_service.update_warehouse(warehouse_id, WarehouseUpdate(is_default=True))
    flash(f"「{marked.name}」已设为默认仓库", "success")
    return redirect(url_for("console.warehouses"))


def _list_page(message: str | None = None, errors: dict | None = None, status: int = 200):
    return render_template("console/warehouses.html", warehouses=warehouse_service.all_warehouses(),
                           message=message, errors=errors or {}, values=request.form), status


def _warehouse_page(warehouse_id: int, item, message: str | None = None, errors: dict | None = None,
                    status: int = 200):
    query, query_errors = query_or_errors(StockQuery, {"per_page": PER_PAGE})
    values = request.form if request.method == "POST" else {
        "code": item.code, "name": item.name, "address": item.address or ""}
    return render_template("console/warehouse.html", warehouse=item, query=query, query_errors=query_errors,
                           page=stock_service.list_warehouse_stock(warehouse_id, query),
                           message=message, errors=errors or {}, values=values), status
