"""Stock operations (receive, issue, stocktake, transfer) and the low-stock list."""
from flask import flash, redirect, render_template, request, url_for

from routes.access import actor_name
from routes.console import bp
from routes.console.common import (
    PER_PAGE,
    describe,
    form_payload,
    parse,
    query_or_errors,
)
from schemas.common import MAX_ID
from schemas.product import ProductQuery
from schemas.stock import LowStockQuery, StockAdjust, StockChange, StockTransfer
from services import product_service, stock_service, warehouse_service
from utils.exceptions import AppError, NotFound

FIELDS = {"product_id": "int", "quantity": "int", "reason": "text", "operator": "text", "warehouse_id": "int"}
TRANSFER_FIELDS = {"product_id": "int", "quantity": "int", "reason": "text", "operator": "text",
                   "from_warehouse_id": "int", "to_warehouse_id": "int"}
OPERATIONS = {
    # action: (request model, service use case, label)
    "in": (StockChange, stock_service.add_stock, "入库"),
    "out": (StockChange, stock_service.reduce_stock, "出库"),
    "adjust": (StockAdjust, stock_service.adjust_stock, "盘点调整"),
}
TRANSFER_LABEL = "调拨"
PICKER_SIZE = 8


@bp.get("/stock")
def stock():
    """The three operation forms, for the product chosen with `?product_id=` or found with `?q=`."""
    return _stock_page()


@bp.post("/stock/<any(\"in\", \"out\", \"adjust\"):action>")
def change_stock(action: str):
    """Apply one movement through the stock service; show the new level or the reason it was refused."""
    model, apply, label = OPERATIONS[action]
    data, errors = parse(model, form_payload(FIELDS))
    if data is None:
        return _stock_page(action, "请检查标出的字段", errors, 400, request.form.get("product_id", type=int))
    try:
        result, log = apply(data, actor_name())
    except AppError as exc:
        message, errors = describe(exc)
        return _stock_page(action, message, errors, exc.status, product_id=data.product_id)
    if log is None:
        flash(f"{label}：「{result.product.name}」库存仍为 {result.quantity:,}，数量未变，未记流水", "info")
    else:
        flash(f"{label}成功：「{result.product.name}」库存 {log.before_quantity:,} → {log.after_quantity:,}", "success")
    return redirect(url_for("console.stock", product_id=data.product_id))


@bp.post("/stock/transfer")
def transfer_stock():
    """Move units between two warehouses through the stock service."""
    data, errors = parse(StockTransfer, form_payload(TRANSFER_FIELDS))
    if data is None:
        return _stock_page("transfer", "请检查标出的字段", errors, 400, request.form.get("product_id", type=int))
    try:
        moved = stock_service.transfer_stock(data, actor_name())
    except AppError as exc:
        message, errors = describe(exc)
        return _stock_page("transfer", message, errors, exc.status, product_id=data.product_id)
    source, target = moved["from"], moved["to"]
    flash(f"{TRANSFER_LABEL}成功：{data.quantity:,} 件从 {source.warehouse_code}（余 {source.quantity:,}）"
          f"到 {target.warehouse_code}（现 {target.quantity:,}）", "success")
    return redirect(url_for("console.stock", product_id=data.product_id))


@bp.get("/stock/low")
def low_stock():
    """Products at or below their minimum, largest shortage first."""
    paging, _ = query_or_errors(LowStockQuery, {"per_page": PER_PAGE})
    return render_template("console/low_stock.html", page=stock_service.list_low_stock(paging))


def _stock_page(active: str | None = None, message: str | None = None, errors: dict | None = None,
                status: int = 200, product_id: int | None = None):
    chosen, lookup_error = None, None
    wanted = product_id or request.args.get("product_id", type=int)
    if wanted and not 0 < wanted <= MAX_ID:
        lookup_error = "商品编号无效"
    elif wanted:
        try:
            chosen = stock_service.get_stock(wanted)
        except NotFound:
            lookup_error = f"商品 {wanted} 不存在"
    search = request.args.get("q", "").strip()[:100]
    matches = product_service.list_products(ProductQuery(q=search, per_page=PICKER_SIZE)).items if search else []
    return render_template(
        "console/stock.html", chosen=chosen, lookup_error=lookup_error, search=search, matches=matches,
        active=active, message=message, errors=errors or {}, values=request.form, operations=OPERATIONS,
        warehouses=warehouse_service.all_warehouses(), transfer_label=TRANSFER_LABEL,
    ), status
