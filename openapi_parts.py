"""Pieces of the OpenAPI document that do not depend on a view: the envelopes, the one
error schema, headers, security schemes, and query models turned into parameters."""
from typing import Any

from pydantic import BaseModel, Field

from utils.validation import MAX_DETAILS, OMITTED

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model="Error")}
MAX_PATH_ID = 10**18 - 1  # what the `id` URL converter accepts
# A query model's rule over several of its parameters is a model-level `not` (generators
# of clients ignore it, where `anyOf` would turn the parameters into a union), and the
# name of the one parameter they travel in.
GROUP_KEY = "x-parameter-group"


def envelope(data_schema: dict | None, paginated: bool, ledger: bool = False) -> dict:
    """The success envelope around `data` (a page of items for a list)."""
    if paginated:
        data_schema = {
            "type": "object",
            "required": ["items", "pagination"],
            "properties": {"items": {"type": "array", "items": data_schema},
                           "pagination": {"$ref": REF.format(model="LedgerPagination" if ledger else "Pagination")}},
        }
    return {
        "type": "object",
        "required": ["success", "message", "data"],
        "properties": {"success": {"type": "boolean", "const": True}, "message": {"type": "string"},
                       "data": data_schema if data_schema is not None else {"type": "null"}},
    }


def error_schema(codes: list[str]) -> dict:
    """The one error envelope every error answer refers to; which codes an operation can
    answer is in its responses' descriptions and `x-error-codes`."""
    return {
        "type": "object",
        "description": "Every error answer: `success` false, a Chinese `message`, a stable `error.code`.",
        "required": ["success", "message", "error"],
        "properties": {
            "success": {"type": "boolean", "const": False},
            "message": {"type": "string", "examples": ["库存不足"]},
            "error": {
                "type": "object",
                "required": ["code", "details"],
                "properties": {
                    "code": {"type": "string", "enum": sorted(codes)},
                    "details": {"type": "object", "additionalProperties": True,
                                "description": "What was wrong, e.g. a message per field (出错的字段及原因，最多 "
                                               f"{MAX_DETAILS} 个；其余错误的个数在 `{OMITTED}`)."},
                },
            },
        },
    }


def header(description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}, "required": required}


REQUEST_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
HEADERS = {
    "X-Request-ID": header("This request's id: the client's own when it was 1–128 of `A-Z a-z 0-9 . _ : -`, "
                           "else one the server made.", {"type": "string", "pattern": REQUEST_ID_PATTERN}, True),
    "ETag": header("The product's version, for If-Match.", {"type": "string", "pattern": '^"[0-9]+"$'}, True),
    "Location": header("URL of the created resource.", required=True),
    "Idempotent-Replayed": header("`true` when this is a stored response replayed.", {"type": "string", "const": "true"}),
    "WWW-Authenticate": header("`Bearer`: send an API key.", required=True),
    "Content-Disposition": header("`attachment` with the file's name (`products-20261124-213000.csv`).",
                                  required=True),
    "Retry-After": header("Seconds until the caller's budget resets.", {"type": "string", "pattern": "^[1-9][0-9]*$"},
                          True),
}


# A spreadsheet as a request body (an import) and as an answer (an export). The raw body
# is declared as `application/octet-stream`, which generated clients support; the server
# takes `text/csv` and the XLSX type as well (the operation's description says so).
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_BINARY = {"type": "string", "format": "binary"}
UPLOAD_BODY = {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": {
        **_BINARY, "description": "A CSV (UTF-8 with or without BOM, or GB18030) or XLSX file"}}}},
    "application/octet-stream": {"schema": {**_BINARY, "description": "The file itself (CSV or XLSX)"}},
}}
FILE_CONTENT = {
    "text/csv": {"schema": {"type": "string", "description": "UTF-8 with a BOM, CRLF line ends"}},
    XLSX_MEDIA_TYPE: {"schema": _BINARY},
}


def header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


# Headers an error answer carries besides X-Request-ID, by status.
ERROR_HEADERS = {401: ("WWW-Authenticate",), 429: ("Retry-After",)}


def _header_parameter(name: str, description: str, schema: dict, example: str) -> dict:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema,
            "example": example}


REQUEST_ID_PARAMETER = _header_parameter(
    "X-Request-ID", "Your id for this request, echoed in the answer's `X-Request-ID` when it is 1–128 of "
                    "`A-Z a-z 0-9 . _ : -`; any other value is replaced by an id the server makes (never refused).",
    {"type": "string"}, "order-4711-try-1")
IDEMPOTENCY_KEY_PARAMETER = _header_parameter(
    "Idempotency-Key", "Makes the write exactly-once: a retry with the same key and request replays the first "
                       "response; the same key with another request answers 422; 1–255 visible ASCII "
                       "characters, else 400.",
    {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"}, "7f0c2a9e-order-4711")
IF_MATCH_PARAMETER = _header_parameter(
    "If-Match", "The ETag the change is meant for (`\"3\"`, a list of them, or `*`): a value that matches no "
                "current ETag, an empty one included, answers 412 and changes nothing.",
    {"type": "string"}, '"1"')
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer <API key>` (create one with `flask --app main keys create`)."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "The same API key in `X-API-Key`."},
}
KEY_REQUIRED = [{"bearerAuth": []}, {"apiKeyHeader": []}]


def path_parameter(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "example": 1,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PATH_ID}}


def _plain(prop: dict) -> dict:
    """A property's schema as a parameter's: null branches and `title` dropped, `examples`
    kept for the parameter's own `example`."""
    prop = {key: value for key, value in prop.items() if key != "title"}
    alternatives = [alt for alt in prop.pop("anyOf", []) if alt.get("type") != "null"]
    if len(alternatives) == 1:
        prop.update(alternatives[0])
    elif alternatives:
        prop["anyOf"] = alternatives
    if prop.get("default") is None:
        prop.pop("default", None)
    return prop


def _mentioned(rule: Any) -> set[str]:
    """Property names a rule speaks of (`required` lists, `properties` keys)."""
    names: set[str] = set()
    if isinstance(rule, dict):
        names |= set(rule.get("required", [])) | set(rule.get("properties", {}))
        for value in rule.values():
            names |= _mentioned(value)
    elif isinstance(rule, list):
        for value in rule:
            names |= _mentioned(value)
    return names


def _parameter(name: str, schema: dict, **extra) -> dict:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema, **extra}
    examples = schema.pop("examples", None)
    if examples:
        parameter["example"] = examples[0]
    elif "default" in schema:
        parameter["example"] = schema["default"]
    return parameter


def query_parameters(model_schema: dict) -> list[dict]:
    """One optional query parameter per property of a query model, except those a
    model-level rule relates (`as_of` or `as_of_seq`, not both): they travel together as
    one exploded object parameter (plain `name=value` pairs on the wire) that carries the
    rule, so the document states it as the server enforces it."""
    properties = {name: _plain(prop) for name, prop in model_schema.get("properties", {}).items()}
    rule = model_schema.get("not")
    grouped = _mentioned(rule)
    parameters = []
    for name, prop in properties.items():
        if name not in grouped:
            parameters.append(_parameter(name, prop))
        elif name == next(member for member in properties if member in grouped):
            members = {member: properties[member] for member in properties if member in grouped}
            # One member's example: the rule may forbid sending several together.
            example = next(({member: (schema.get("examples") or [schema.get("default")])[0]}
                            for member, schema in members.items() if "examples" in schema or "default" in schema), {})
            schema = {"type": "object", "properties": members, "additionalProperties": False, "not": rule}
            parameters.append(_parameter(model_schema[GROUP_KEY], schema, style="form", explode=True,
                                         description=model_schema.get("description", ""), example=example))
    return parameters


class Pagination(BaseModel):
    """The `pagination` object of every list."""

    page: int
    per_page: int
    total: int
    pages: int
    next_after: str | None = Field(
        description="Cursor of the last item: pass as `after` for the next page (null: no row follows). With a "
                    "cursor, `page` is 1 and `total`/`pages` describe the whole filtered list: follow cursors, not `page`.")
    prev_before: str | None = Field(
        description="Cursor of the first item: pass as `before` for the previous page (null: no row precedes).")


class LedgerPagination(Pagination):
    """The `pagination` of the movement lists, which also names the next page by id."""

    next_before_id: int | None = Field(
        description="Pass as `before_id` for the next page (null on a short page): the same as `after` with "
                    "`next_after`.")


_PRODUCT_ID = {"product_id": "$response.body#/data/id"}
PRODUCT_LINKS = {
    "GetProduct": {"operationId": "products_get_product", "parameters": _PRODUCT_ID},
    "GetStock": {"operationId": "stock_get_stock", "parameters": _PRODUCT_ID},
    "GetProductLogs": {"operationId": "logs_product_logs", "parameters": _PRODUCT_ID},
    "AddStock": {"operationId": "stock_add_stock",
                 "requestBody": {"product_id": "$response.body#/data/id", "quantity": 5, "reason": "初始入库"}},
    "UpdateProduct": {"operationId": "products_update_product_put", "parameters": _PRODUCT_ID},
    "DeleteProduct": {"operationId": "products_delete_product", "parameters": _PRODUCT_ID},
}
