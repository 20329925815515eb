"""`/api/import` and `/api/export`: spreadsheets in (checked whole, applied whole) and
out (streamed as they are read)."""
from collections.abc import Iterator
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, request, stream_with_context

from openapi_spec import operation
from routes.access import actor_name
from routes.parsing import query_args
from schemas.bulk import ExportQuery, ImportOut, ImportQuery, LogExportQuery, StockExportQuery
from services import export_service, import_service
from services.spreadsheet import CSV_TYPE, XLSX_TYPE, csv_stream, xlsx_stream
from utils.exceptions import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from utils.response_handler import success

imports = Blueprint("imports", __name__, url_prefix="/api/import")
exports = Blueprint("exports", __name__, url_prefix="/api/export")

RAW_TYPES = {CSV_TYPE, XLSX_TYPE, "application/octet-stream"}
FORM_TYPE = "multipart/form-data"
# The one API and the one console endpoint that take a file: their bodies may be larger.
UPLOAD_ENDPOINTS = {"imports.import_products", "console.import_products"}
FORM_OVERHEAD = 64 * 1024  # a form's boundaries, part headers and CSRF token beside the file


def allow_uploads() -> None:
    """Raise the body limit from MAX_CONTENT_LENGTH to IMPORT_MAX_BYTES where a file is
    uploaded, before anything reads the body (the console's CSRF check does)."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        limit = current_app.config["IMPORT_MAX_BYTES"] + FORM_OVERHEAD
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"文件过大（上限 {current_app.config['IMPORT_MAX_BYTES']} 字节）",
                                  {"limit": current_app.config["IMPORT_MAX_BYTES"]})
        request.max_content_length = limit


def uploaded_file() -> bytes:
    """The file from the form field `file`, or the raw body."""
    limit = current_app.config["IMPORT_MAX_BYTES"]
    if request.mimetype == FORM_TYPE:
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed("请在表单字段 file 中上传文件", {"file": "必填字段"})
        return upload.read(limit + 1)
    if request.mimetype in RAW_TYPES:
        return request.get_data(cache=False)
    raise UnsupportedMediaType(
        "请以 multipart/form-data 的 file 字段上传，或以 text/csv、XLSX 类型的请求体发送",
        {"content_type": request.mimetype or None})


@imports.post("/products")
@operation(summary="导入商品（CSV/XLSX；全部成功或全部不做）", tag="import-export", data=ImportOut, query=ImportQuery,
           upload=True,
           description="Columns by header, in English or Chinese: `sku`/`商品编码` (required), `name`/`名称`, "
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


def download(name: str, header: tuple[str, ...], rows: Iterator[tuple], file_format: str) -> Response:
    """A file answered as it is written; its rows are read while it is sent."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if file_format == "xlsx":
        body, mimetype = xlsx_stream(list(header), rows, name), XLSX_TYPE
    else:
        body, mimetype = csv_stream(list(header), rows), f"{CSV_TYPE}; charset=utf-8"
    response = Response(stream_with_context(body), content_type=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{file_format}"'
    response.headers["Cache-Control"] = "no-store"
    return response


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
