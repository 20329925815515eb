"""`/api/import` and `/api/export`: spreadsheets in (checked whole, applied whole) and
out (streamed as they are read)."""
from flask import Blueprint

from openapi_spec import operation
from routes.access import actor_name
from routes.files import allow_uploads, download, uploaded_file
from routes.parsing import query_args
from schemas.bulk import ExportQuery, ImportOut, ImportQuery, LogExportQuery, StockExportQuery
from services import export_service, import_service
from utils.response_handler import success

imports = Blueprint("imports", __name__, url_prefix="/api/import")
imports.before_request(allow_uploads)
exports = Blueprint("exports", __name__, url_prefix="/api/export")

@imports.post("/products")
@operation(summary="导入商品（CSV/XLSX；全部成功或全部不做）", tag="import-export", data=ImportOut, query=ImportQuery,
           upload=True, errors=("CONFLICT",),
           description="The file as the form field `file`, or as the body itself with `Content-Type` "
                       "`text/csv`, the XLSX type or `application/octet-stream`. Columns by header, in English or Chinese: "
                       "`sku`/`商品编码` (required), `name`/`名称`, "
                       "`barcode`/`条码`, `price`/`价格`, `category`/`分类`, `description`/`描述`, "
                       "`min_quantity`/`最低库存`, `max_quantity`/`最高库存`, `location`/`库位`, `warehouse`/`仓库`, "
                       "`quantity`/`数量` (a stocktake count, logged as `adjust`) and `expected_quantity`/`账面数量` "
                       "(the count must still be this). Rows upsert by SKU. Any bad row is a 400 whose "
                       "`details.errors` names each row (the header is row 1) and column; nothing is applied. "
                       "Limits: IMPORT_MAX_BYTES (10 MiB), IMPORT_MAX_ROWS (50,000), IMPORT_MAX_CELL (10,000).")
def import_products():
    dry_run = query_args(ImportQuery).dry_run
    report = import_service.import_products(uploaded_file(), dry_run=dry_run, actor=actor_name())
    return success(report.summary(), "预演完成，未做任何更改" if dry_run else "导入成功")


@exports.get("/products")
@operation(summary="导出商品（可原样导回）", tag="import-export", query=ExportQuery, download=True)
def export_products():
    query = query_args(ExportQuery)
    return download("products", export_service.PRODUCT_COLUMNS, export_service.product_rows(), query.format)


@exports.get("/stock")
@operation(summary="导出库存（盘点表：改 quantity 后导回）", tag="import-export", query=StockExportQuery, download=True,
           errors=("NOT_FOUND",))
def export_stock():
    query = query_args(StockExportQuery)
    export_service.check_warehouse(query)
    return download("stock", export_service.STOCK_COLUMNS, export_service.stock_rows(query), query.format)


@exports.get("/logs")
@operation(summary="导出流水（按 /api/logs/ 的筛选条件）", tag="import-export", query=LogExportQuery, download=True)
def export_logs():
    query = query_args(LogExportQuery)
    return download("logs", export_service.LOG_COLUMNS, export_service.log_rows(query), query.format)
