"""Files over HTTP: the one body allowed past MAX_CONTENT_LENGTH (an uploaded
spreadsheet), and a spreadsheet answered as it is written."""
from collections.abc import Iterator
from datetime import datetime, timezone

from flask import Response, current_app, request, stream_with_context

from services.spreadsheet import CSV_TYPE, XLSX_TYPE, csv_stream, file_chunks, xlsx_file
from utils.exceptions import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

RAW_TYPES = {CSV_TYPE, XLSX_TYPE, "application/octet-stream"}
FORM_TYPE = "multipart/form-data"
# The one API and the one console endpoint that take a file: their bodies may be larger.
UPLOAD_ENDPOINTS = {"imports.import_products", "console.import_products"}
FORM_OVERHEAD = 64 * 1024  # a form's boundaries, part headers and CSRF token beside the file


def allow_uploads() -> None:
    """Raise the body limit from MAX_CONTENT_LENGTH to IMPORT_MAX_BYTES where a file is
    uploaded, before anything reads the body (the console's CSRF check does): a hook of
    the two blueprints that take files, so other requests do not run it."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        limit = current_app.config["IMPORT_MAX_BYTES"] * 4 // 3 + FORM_OVERHEAD
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"文件过大（上限 {current_app.config['IMPORT_MAX_BYTES']} 字节）",
                                  {"limit": current_app.config["IMPORT_MAX_BYTES"]})
        request.max_content_length = limit
        # The console's apply step carries the previewed file back in a form field, as base64.
        request.max_form_memory_size = limit * 4 // 3 + FORM_OVERHEAD


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


def download(name: str, header: tuple[str, ...], rows: Iterator[tuple], file_format: str) -> Response:
    """A file answered as it is written: a CSV's rows are read while it is sent; an
    XLSX is written to a temporary file first (a zip is read from its end)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    if file_format == "xlsx":
        response = Response(file_chunks(xlsx_file(list(header), rows, name)), content_type=XLSX_TYPE)
    else:
        response = Response(stream_with_context(csv_stream(list(header), rows)), content_type=f"{CSV_TYPE}; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{file_format}"'
    response.headers["Cache-Control"] = "no-store"
    return response
