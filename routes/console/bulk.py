"""Spreadsheets in the console: an import page (choose a file, see the dry run as a table
with errors marked by row and column, then apply the very same file) and the export
downloads behind the buttons on the product, stock and log pages."""
import base64
import binascii

from flask import flash, redirect, render_template, request, url_for

from routes.access import actor_name
from routes.console import bp
from routes.console.common import query_or_errors
from routes.files import download
from schemas.bulk import ExportQuery, LogExportQuery, StockExportQuery
from services import export_service, import_service
from services.import_service import ImportRefused
from utils.exceptions import ValidationFailed

PREVIEW_ROWS = 200  # rows of the file shown, besides every row that has an error


@bp.get("/import")
def import_page():
    return render_template("console/import.html", result=None)


@bp.post("/import")
def import_products():
    """`preview` runs the import as a dry run; `apply` imports the file carried over from
    the preview (base64 in the form: the page needs no server-side state)."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data, filename = upload.read(), upload.filename
    else:
        try:
            data = base64.b64decode(request.form.get("content", ""), validate=True)
        except binascii.Error:
            data = b""
        filename = request.form.get("filename", "")
    if not data:
        return render_template("console/import.html", result=None, message="请选择要导入的文件"), 400
    apply = request.form.get("action") == "apply"
    result = {"filename": filename, "applied": apply, "errors": [], "summary": None, "outcomes": {}}
    status = 200
    try:
        report = import_service.import_products(data, dry_run=not apply, actor=actor_name())
        result["summary"], result["outcomes"] = report.summary(), {row: state for row, _, state in report.outcomes}
    except ImportRefused as exc:
        result["errors"], result["errors_total"], status = exc.details["errors"], exc.details["errors_total"], 400
    except ValidationFailed as exc:
        return render_template("console/import.html", result=None, message=f"{exc.message}：{exc.details.get('file', '')}"), 400
    if apply and status == 200:
        summary = result["summary"]
        flash(f"导入完成：新建 {summary['created']}，更新 {summary['updated']}，未变 {summary['unchanged']}，"
              f"盘点调整 {summary['stock_adjusted']}", "success")
        return redirect(url_for("console.products"))
    table = import_service.preview_table(data)
    marked = {(error["row"], error["column"]) for error in result["errors"]}
    bad_rows = {error["row"] for error in result["errors"]}
    rows = [(number, cells) for index, (number, cells) in enumerate(table.rows) if index < PREVIEW_ROWS or number in bad_rows]
    return render_template(
        "console/import.html", result=result, header=table.header, rows=rows, marked=marked, total_rows=len(table.rows),
        row_errors={row: [e for e in result["errors"] if e["row"] == row] for row in bad_rows},
        content=base64.b64encode(data).decode("ascii") if status == 200 else None), status


@bp.get("/export/products")
def export_products():
    query, _ = query_or_errors(ExportQuery)
    return download("products", export_service.PRODUCT_COLUMNS, export_service.product_rows(), query.format)


@bp.get("/export/stock")
def export_stock():
    query, _ = query_or_errors(StockExportQuery)
    export_service.check_warehouse(query)
    return download("stock", export_service.STOCK_COLUMNS, export_service.stock_rows(query), query.format)


@bp.get("/export/logs")
def export_logs():
    query, _ = query_or_errors(LogExportQuery)
    return download("logs", export_service.LOG_COLUMNS, export_service.log_rows(query), query.format)
