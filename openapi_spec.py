"""The OpenAPI 3.1 document, generated from the URL map and the pydantic models each
view declares with `@operation`, so the document cannot drift from the code."""
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from pydantic import BaseModel, Field, TypeAdapter

from config import VERSION
from error_handlers import HTTP_ERRORS
from rate_limits import EXEMPT_ENDPOINTS
from routes.access import required_role
from utils.exceptions import AppError
from utils.validation import MAX_DETAILS, OMITTED

# Endpoints that are not part of the JSON API: the document itself, its viewer, the
# metrics scrape and the HTML web console (every endpoint of the `console` blueprint).
UNDOCUMENTED = {"static", "docs.show", "system.openapi", "metrics"}
UNDOCUMENTED_BLUEPRINTS = ("console.",)


def is_documented(endpoint: str) -> bool:
    """Whether an endpoint belongs in the OpenAPI document."""
    return endpoint not in UNDOCUMENTED and not endpoint.startswith(UNDOCUMENTED_BLUEPRINTS)


MAX_PATH_ID = 10**18 - 1  # what the `id` URL converter accepts
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """What a view accepts and answers, for the document."""

    summary: str
    tag: str
    data: Any = None  # type of `data` in the success envelope
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    status: int = 200
    paginated: bool = False
    ledger: bool = False  # a movement list: its pagination also names the next page by id
    errors: tuple[str, ...] = ()
    description: str = ""
    example: dict | None = None  # a request body example
    etag: bool = False  # answers the product's ETag
    conditional: bool = False  # honours If-Match


def operation(**fields):
    """Declare a view's operation; `build_document` reads it from the view."""

    def decorate(view):
        view.openapi_operation = Operation(**fields)
        return view

    return decorate


def _error_statuses() -> dict[str, int]:
    statuses = {"INTERNAL_ERROR": 500, "RATE_LIMITED": 429, "UNAUTHORIZED": 401, "FORBIDDEN": 403}
    for status, (code, _) in HTTP_ERRORS.items():
        statuses[code] = status
    pending = list(AppError.__subclasses__())
    while pending:
        cls = pending.pop()
        statuses[cls.code] = cls.status
        pending.extend(cls.__subclasses__())
    return statuses


ERROR_STATUS = _error_statuses()


def _envelope(data_schema: dict | None, paginated: bool, ledger: bool = False) -> dict:
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
        "properties": {"success": {"const": True}, "message": {"type": "string"},
                       "data": data_schema if data_schema is not None else {"type": "null"}},
    }


def _error_envelope(codes: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["success", "message", "error"],
        "properties": {
            "success": {"const": False},
            "message": {"type": "string"},
            "error": {
                "type": "object",
                "required": ["code", "details"],
                "properties": {"code": {"type": "string", "enum": sorted(codes)}, "details": {
                    "type": "object",
                    "description": f"出错的字段及原因（最多 {MAX_DETAILS} 个；其余错误的个数在 `{OMITTED}`）"}},
            },
        },
    }


def _header(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "schema": schema or {"type": "string"}}


def _query_parameters(schema: dict) -> list[dict]:
    """One optional query parameter per property of a query model (null branches dropped)."""
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = {key: value for key, value in prop.items() if key != "title"}
        alternatives = [alt for alt in prop.pop("anyOf", []) if alt.get("type") != "null"]
        if len(alternatives) == 1:
            prop.update(alternatives[0])
        elif alternatives:
            prop["anyOf"] = alternatives
        if prop.get("default") is None:
            prop.pop("default", None)
        parameters.append({"name": name, "in": "query", "required": False, "schema": prop})
    return parameters


class _Builder:
    def __init__(self, app: Flask):
        self.app = app
        self.adapters: dict[tuple[str, str], TypeAdapter] = {}

    def want(self, kind: str, type_: Any, mode: str) -> tuple[str, str]:
        key = (f"{kind}:{type_!r}", mode)
        self.adapters.setdefault(key, TypeAdapter(type_))
        return key

    def operations(self):
        for rule in sorted(self.app.url_map.iter_rules(), key=lambda r: r.rule):
            if not is_documented(rule.endpoint):
                continue
            view = self.app.view_functions[rule.endpoint]
            op = getattr(view, "openapi_operation", None)
            if op is None:
                raise RuntimeError(f"route {rule.rule} ({rule.endpoint}) declares no @operation")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method, op, view

    def build(self) -> dict:
        found = list(self.operations())
        for _, _, op, _ in found:
            if op.data is not None:
                self.want("data", op.data, "serialization")
            for model in (op.query, op.body):
                if model is not None:
                    self.want("in", model, "validation")
        self.want("data", Pagination, "serialization")
        self.want("data", LedgerPagination, "serialization")
        inputs = [(name, mode, adapter) for (name, mode), adapter in self.adapters.items()]
        refs, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF, by_alias=True)
        components = definitions.get("$defs", {})
        self.refs = {name: ref for (name, _), ref in refs.items()}
        self.components = components

        paths: dict[str, dict] = {}
        for rule, method, op, view in found:
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            paths.setdefault(path, {})[method.lower()] = self.operation(rule, method, op, view)
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "库存管理服务 Inventory service API",
                "version": VERSION,
                "description": "Products, stock levels and an append-only, hash-chained movement ledger. "
                               "Every answer is the JSON envelope `{success, message, data | error}`.",
            },
            "servers": [{"url": "/"}],
            "paths": paths,
            "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
        }

    def operation(self, rule, method: str, op: Operation, view) -> dict:
        idempotent = getattr(view, "idempotent", False)
        path_ids = list(rule.arguments)
        parameters = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PATH_ID}}
            for name in path_ids
        ]
        if op.query is not None:
            query_ref = self.refs[f"in:{op.query!r}"]["$ref"].rsplit("/", 1)[-1]
            parameters += _query_parameters(self.components[query_ref])
        parameters.append({"name": "X-Request-ID", "in": "header", "required": False,
                           "description": "Echoed back; generated when absent or malformed.",
                           "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}})
        if idempotent:
            parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                               "description": "Makes the write exactly-once: a retry with the same key and "
                                              "request replays the first response.",
                               "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"}})
        if op.conditional:
            parameters.append({"name": "If-Match", "in": "header", "required": False,
                               "description": "The product's ETag; a mismatch answers 412.",
                               "schema": {"type": "string"}})

        codes = {"INTERNAL_ERROR", "SERVICE_UNAVAILABLE", *op.errors}
        role = _required_role(rule, method)
        if role is not None:
            codes |= {"UNAUTHORIZED", "FORBIDDEN"}
        if rule.endpoint not in EXEMPT_ENDPOINTS:
            codes.add("RATE_LIMITED")
        if op.query is not None or op.body is not None:
            codes.add("VALIDATION_ERROR")
        if op.body is not None:
            codes |= {"PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"}
        if path_ids:
            codes.add("NOT_FOUND")
        if idempotent:
            codes |= {"CONFLICT", "IDEMPOTENCY_KEY_REUSED", "VALIDATION_ERROR"}

        success_headers = {"X-Request-ID": _header("This request's id.")}
        if op.etag:
            success_headers["ETag"] = _header("The product's version, for If-Match.")
        if op.status == 201:
            success_headers["Location"] = _header("URL of the created resource.")
        if idempotent:
            success_headers["Idempotent-Replayed"] = _header(
                "`true` when this is a stored response replayed.", {"const": "true"})
        data_schema = self.refs[f"data:{op.data!r}"] if op.data is not None else None
        responses: dict[str, Any] = {
            str(op.status): {
                "description": op.summary,
                "headers": success_headers,
                "content": {"application/json": {"schema": _envelope(data_schema, op.paginated, op.ledger)}},
            }
        }
        by_status: dict[int, list[str]] = {}
        for code in codes:
            by_status.setdefault(ERROR_STATUS[code], []).append(code)
        for status, status_codes in sorted(by_status.items()):
            responses[str(status)] = {
                "description": ", ".join(sorted(status_codes)),
                "headers": {"X-Request-ID": _header("This request's id."), **ERROR_HEADERS.get(status, {})},
                "content": {"application/json": {"schema": _error_envelope(status_codes)}},
            }
        if rule.endpoint == "products.create_product":
            responses[str(op.status)]["links"] = PRODUCT_LINKS

        document = {
            "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}"
                           if len(rule.methods - {"HEAD", "OPTIONS"}) > 1 else rule.endpoint.replace(".", "_"),
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if role is None:
            document["security"] = []
        else:
            document["security"] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
            document["x-required-role"] = role
        description = op.description + (f"\n\nRequired role when access control is on: `{role}`." if role else "")
        if description.strip():
            document["description"] = description.strip()
        if op.body is not None:
            media = {"schema": self.refs[f"in:{op.body!r}"]}
            if op.example is not None:
                media["example"] = op.example
            document["requestBody"] = {"required": True, "content": {"application/json": media}}
        return document


def _required_role(rule, method: str) -> str | None:
    """The access policy's answer for a rule, so the document states what is enforced."""
    blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
    return required_role(rule.endpoint, blueprint, method)


SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer <API key>` (create one with `flask --app main keys create`)."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                     "description": "The same API key in `X-API-Key`."},
}
# Headers an error answer carries besides X-Request-ID.
ERROR_HEADERS = {
    401: {"WWW-Authenticate": {**_header("`Bearer`: send an API key."), "required": True}},
    429: {"Retry-After": {**_header("Seconds until the caller's budget resets.",
                                    {"type": "string", "pattern": "^[1-9][0-9]*$"}), "required": True}},
}


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


def build_document(app: Flask) -> dict:
    """The whole OpenAPI 3.1 document for `app`."""
    return _Builder(app).build()


def document_for(app: Flask) -> dict:
    """`build_document`, cached on the app: routes do not change after start-up."""
    if "openapi_document" not in app.extensions:
        app.extensions["openapi_document"] = build_document(app)
    return app.extensions["openapi_document"]
