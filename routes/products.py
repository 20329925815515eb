"""`/api/products`: the catalogue. Single-product answers carry the product's ETag."""
from flask import Blueprint, url_for

from routes.idempotency import idempotent
from routes.parsing import dump, dump_all, if_match, json_body, query_args
from schemas.product import CategoryOut, ProductCreate, ProductOut, ProductQuery, ProductUpdate
from services import product_service
from utils.response_handler import paginated, success

bp = Blueprint("products", __name__, url_prefix="/api/products")


def _product_response(product, message: str = "成功", status: int = 200, headers: dict | None = None):
    headers = {"ETag": product_service.etag(product), **(headers or {})}
    return success(dump(ProductOut, product), message, status, headers)


@bp.get("/", strict_slashes=False)
def list_products():
    page = product_service.list_products(query_args(ProductQuery))
    return paginated(dump_all(ProductOut, page.items), page)


@bp.post("/", strict_slashes=False)
@idempotent
def create_product():
    product = product_service.create_product(json_body(ProductCreate))
    location = url_for("products.get_product", product_id=product.id)
    return _product_response(product, "创建成功", 201, {"Location": location})


@bp.get("/categories")
def list_categories():
    categories = product_service.list_categories()
    return success(dump_all(CategoryOut, categories))


@bp.get("/<id:product_id>")
def get_product(product_id: int):
    return _product_response(product_service.get_product(product_id))


@bp.route("/<id:product_id>", methods=["PUT", "PATCH"])
def update_product(product_id: int):
    product = product_service.update_product(product_id, json_body(ProductUpdate), if_match())
    return _product_response(product, "更新成功")


@bp.delete("/<id:product_id>")
def delete_product(product_id: int):
    product_service.delete_product(product_id, if_match())
    return success({"id": product_id}, "删除成功")
