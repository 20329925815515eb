"""`/api/products`: the catalogue. Single-product answers carry the product's ETag."""
from flask import Blueprint, url_for

from openapi_spec import operation
from routes.access import actor_name
from routes.idempotency import idempotent
from routes.parsing import dump, dump_all, if_match, json_body, query_args
from schemas.product import (
    CategoryOut,
    ProductCreate,
    ProductOut,
    ProductQuery,
    ProductUpdate,
)
from schemas.system import DeletedOut
from services import product_service
from utils.response_handler import paginated, success

bp = Blueprint("products", __name__, url_prefix="/api/products")

CREATE_EXAMPLE = {"name": "测试商品", "sku": "TEST-001", "price": 99.99, "category": "测试",
                  "description": "示例商品", "min_quantity": 10, "location": "A区-01", "initial_quantity": 100}


def _product_response(product, message: str = "成功", status: int = 200, headers: dict | None = None):
    headers = {"ETag": product_service.etag(product), **(headers or {})}
    return success(dump(ProductOut, product), message, status, headers)


@bp.get("/", strict_slashes=False)
@operation(summary="商品列表", tag="products", data=ProductOut, query=ProductQuery, paginated=True)
def list_products():
    page = product_service.list_products(query_args(ProductQuery))
    return paginated(dump_all(ProductOut, page.items), page)


@bp.post("/", strict_slashes=False)
@operation(summary="创建商品", tag="products", data=ProductOut, body=ProductCreate, status=201,
           errors=("DUPLICATE",), etag=True, example=CREATE_EXAMPLE)
@idempotent
def create_product():
    product = product_service.create_product(json_body(ProductCreate), actor_name())
    location = url_for("products.get_product", product_id=product.id)
    return _product_response(product, "创建成功", 201, {"Location": location})


@bp.get("/categories")
@operation(summary="商品分类及商品数", tag="products", data=list[CategoryOut])
def list_categories():
    categories = product_service.list_categories()
    return success(dump_all(CategoryOut, categories))


@bp.get("/<id:product_id>")
@operation(summary="商品详情", tag="products", data=ProductOut, etag=True)
def get_product(product_id: int):
    return _product_response(product_service.get_product(product_id))


@bp.route("/<id:product_id>", methods=["PUT", "PATCH"])
@operation(summary="修改商品（只改所给字段）", tag="products", data=ProductOut, body=ProductUpdate,
           errors=("DUPLICATE", "CONFLICT", "PRECONDITION_FAILED"), etag=True, conditional=True,
           description="An empty body is refused (400). `max_quantity` below a `min_quantity` sent with it is a "
                       "400; below the minimum the product already has, a 409 `CONFLICT`.",
           example={"price": 88.0, "category": "饮料"})
def update_product(product_id: int):
    product = product_service.update_product(product_id, json_body(ProductUpdate), if_match())
    return _product_response(product, "更新成功")


@bp.delete("/<id:product_id>")
@operation(summary="删除商品（流水保留）", tag="products", data=DeletedOut,
           errors=("PRECONDITION_FAILED",), conditional=True)
def delete_product(product_id: int):
    product_service.delete_product(product_id, if_match())
    return success({"id": product_id}, "删除成功")
