"""Product pages: the searchable list, a product's page, create, edit and delete."""
from flask import flash, redirect, render_template, request, url_for

from models import STATUSES
from routes.access import actor_name
from routes.console import bp
from routes.console.common import (
    PER_PAGE,
    describe,
    form_payload,
    parse,
    query_or_errors,
)
from schemas.log import LedgerPageQuery
from schemas.product import PRODUCT_SORTS, ProductCreate, ProductQuery, ProductUpdate
from schemas.reservation import ReservationQuery
from services import dashboard_service, log_service, product_service, reservation_service, stock_service
from utils.display_time import format_moment
from utils.exceptions import AppError, PreconditionFailed

FIELDS = {
    "name": "text", "sku": "text", "barcode": "text", "price": "money", "category": "text", "description": "text",
    "min_quantity": "int", "max_quantity": "int", "location": "text",
}
SORT_LABELS = {"id": "编号", "name": "名称", "price": "价格", "sku": "SKU", "created_at": "创建时间",
               "updated_at": "更新时间"}
SORTS = [(key, f"{label} ↑") for key, label in SORT_LABELS.items()] + [
    (f"-{key}", f"{label} ↓") for key, label in SORT_LABELS.items()
]
assert set(SORT_LABELS) == set(PRODUCT_SORTS)


@bp.get("/products")
def products():
    """Search by name/SKU/description, filter by category, sort, page."""
    query, errors = query_or_errors(ProductQuery, {"per_page": PER_PAGE})
    return render_template(
        "console/products.html", page=product_service.list_products(query), query=query, errors=errors,
        categories=product_service.list_categories(), sorts=SORTS,
    )


@bp.get("/scan")
def scan():
    """What a barcode scanner types into the search box, then Enter: a code that is
    exactly a product's barcode or SKU opens that product, anything else is searched for."""
    code = request.args.get("code", "").strip()
    product_id = product_service.find_by_code(code) if code else None
    if product_id is not None:
        return redirect(url_for("console.product", product_id=product_id))
    return redirect(url_for("console.products", q=code or None))


@bp.get("/products/<id:product_id>")
def product(product_id: int):
    """Stock, thresholds, location, movement history and the quantity over time; for a
    deleted product, what it was and its history (which is never deleted)."""
    item = product_service.get_product_with_history(product_id)
    paging, _ = query_or_errors(LedgerPageQuery, {"per_page": PER_PAGE})
    return render_template(
        "console/product.html", product=item,
        levels=[] if item.deleted_at else stock_service.get_stock(product_id).levels,
        held=None if item.deleted_at else reservation_service.list_reservations(
            ReservationQuery(product_id=product_id, status="active", per_page=PER_PAGE)),
        status_labels=STATUSES,
        logs=log_service.product_logs(product_id, paging),
        history=_chart_points(dashboard_service.quantity_history(product_id)),
    )


def _chart_points(history: list[dict]) -> list[dict]:
    """The chart's points: the level (`y`) at its moment (`x`, epoch milliseconds, so the
    axis spaces movements by time), with the moment as a person reads it."""
    return [{"x": int(point["at"].timestamp() * 1000), "y": point["quantity"], "label": format_moment(point["at"])}
            for point in history]


@bp.route("/products/new", methods=["GET", "POST"])
def new_product():
    """Create a product, validated exactly as `POST /api/products/`."""
    values, errors, message, status = request.form, {}, None, 200
    if request.method == "POST":
        data, errors = parse(ProductCreate, form_payload({**FIELDS, "initial_quantity": "int"}))
        status = 400
        if data is not None:
            try:
                created = product_service.create_product(data, actor_name())
            except AppError as exc:
                message, errors, status = *_explain(exc), exc.status
            else:
                flash(f"已创建商品「{created.name}」", "success")
                return redirect(url_for("console.product", product_id=created.id))
    return render_template("console/product_form.html", values=values, errors=errors, message=message,
                           product=None), status


@bp.route("/products/<id:product_id>/edit", methods=["GET", "POST"])
def edit_product(product_id: int):
    """Edit every field at once, guarded by the version the form was loaded with."""
    item = product_service.get_product(product_id)
    values, errors, message, status = request.form, {}, None, 200
    if request.method == "GET":
        values = _form_values(item)
    else:
        data, errors = parse(ProductCreate, form_payload(FIELDS))
        status = 400
        if data is not None:
            changes = ProductUpdate.model_validate(data.model_dump(exclude={"initial_quantity"}))
            version = request.form.get("version", "")
            if_match = frozenset({f'"{version}"'}) if version.isdigit() else None
            try:
                product_service.update_product(product_id, changes, if_match)
            except AppError as exc:
                message, errors, status = *_explain(exc), exc.status
            else:
                flash("商品已保存", "success")
                return redirect(url_for("console.product", product_id=product_id))
    return render_template("console/product_form.html", values=values, errors=errors, message=message,
                           product=item), status


@bp.post("/products/<id:product_id>/delete")
def delete_product(product_id: int):
    """Soft delete: the product leaves the lists; its movement history stays."""
    item = product_service.get_product(product_id)
    product_service.delete_product(product_id)
    flash(f"已删除商品「{item.name}」（流水记录仍保留）", "success")
    return redirect(url_for("console.products"))


def _explain(exc: AppError) -> tuple[str, dict[str, str]]:
    """The page's wording for a refused create or edit."""
    message, errors = describe(exc)
    if exc.code == "DUPLICATE":
        field = next(iter(exc.details), "sku")
        return message, {field: f"该{'条码' if field == 'barcode' else ' SKU '}已被其他商品使用"}
    if isinstance(exc, PreconditionFailed):
        return "保存失败：该商品在你编辑期间已被修改，请重新打开编辑页后再保存", {}
    return message, errors


def _form_values(item) -> dict[str, str]:
    stock = item.stock
    values = {
        "name": item.name, "sku": item.sku, "barcode": item.barcode, "price": f"{item.price:.2f}",
        "category": item.category,
        "description": item.description, "min_quantity": stock.min_quantity, "max_quantity": stock.max_quantity,
        "location": stock.location, "version": item.version,
    }
    return {key: "" if value is None else str(value) for key, value in values.items()}
