"""`/api/products`: the catalogue."""
from flask import Blueprint, url_for

from routes.parsing import dump, dump_all, json_body, query_args
from schemas.product import CategoryOut, ProductCreate, ProductOut, ProductQuery, ProductUpdate
from services import product_service
from utils.response_handler import paginated, success

bp = Blueprint("products", __name__, url_prefix="/api/products")


@bp.get("/", strict_slashes=False)
def list_products():
    page = product_service.list_products(query_args(ProductQuery))
    return paginated(dump_all(ProductOut, page.items), page)


@bp.post("/", strict_slashes=False)
def create_product():
    product = product_service.create_product(json_body(ProductCreate))
    location = url_for("products.get_product", product_id=product.id)
    return success(dump(ProductOut, product), "创建成功", 201, {"Location": location})


@bp.get("/categories")
def list_categories():
    categories = product_service.list_categories()
    return success(dump_all(CategoryOut, categories))


@bp.get("/<id:product_id>")
def get_product(product_id: int):
    return success(dump(ProductOut, product_service.get_product(product_id)))


@bp.route("/<id:product_id>", methods=["PUT", "PATCH"])
def update_product(product_id: int):
    product = product_service.update_product(product_id, json_body(ProductUpdate))
    return success(dump(ProductOut, product), "更新成功")


@bp.delete("/<id:product_id>")
def delete_product(product_id: int):
    product_service.delete_product(product_id)
    return success({"id": product_id}, "删除成功")


