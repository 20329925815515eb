"""The OpenAPI 3.1 document, generated from the URL map and the pydantic models each
view declares with `@operation`, so the document cannot drift from the code."""
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from pydantic import BaseModel, TypeAdapter

from config import VERSION
from error_handlers import HTTP_ERRORS
from openapi_parts import (
    ERROR_HEADERS,
    ERROR_REF,
    FILE_CONTENT,
    HEADERS,
    IDEMPOTENCY_KEY_PARAMETER,
    IF_MATCH_PARAMETER,
    KEY_REQUIRED,
    PRODUCT_LINKS,
    REF,
    REQUEST_ID_PARAMETER,
    SECURITY_SCHEMES,
    UPLOAD_BODY,
    LedgerPagination,
    Pagination,
    envelope,
    error_schema,
    header_ref,
    path_parameter,
    query_parameters,
)
from rate_limits import EXEMPT_ENDPOINTS
from routes.access import required_role
from utils.exceptions import AppError

# Endpoints that are not part of the JSON API: the document itself, its viewer, the
# metrics scrape and the HTML web console (every endpoint of the `console` blueprint).
UNDOCUMENTED = {"static", "docs.show", "system.openapi", "metrics"}
UNDOCUMENTED_BLUEPRINTS = ("console.",)


def is_documented(endpoint: str) -> bool:
    """Whether an endpoint belongs in the OpenAPI document."""
    return endpoint not in UNDOCUMENTED and not endpoint.startswith(UNDOCUMENTED_BLUEPRINTS)


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
    upload: bool = False  # takes a spreadsheet file (form field `file`, or the raw body)
    download: bool = False  # answers a spreadsheet file (CSV or XLSX), not JSON


def operation(**fields):
    """Declare a view's operation; `build_document` reads it from the view."""

    def decorate(view):
        view.openapi_operation = Operation(**fields)
        return view

    return decorate


def _error_statuses() -> dict[str, int]:
    statuses = {"INTERNAL_ERROR": 500, "RATE_LIMITED": 429, "UNAUTHORIZED": 401, "FORBIDDEN": 403,
                # answered by gunicorn before the app (gunicorn_errors.py)
                "URI_TOO_LONG": 414, "HEADERS_TOO_LARGE": 431}
    for status, (code, _) in HTTP_ERRORS.items():
        statuses[code] = status
    pending = list(AppError.__subclasses__())
    while pending:
        cls = pending.pop()
        statuses[cls.code] = cls.status
        pending.extend(cls.__subclasses__())
    return statuses


ERROR_STATUS = _error_statuses()


ERROR_DESCRIPTIONS = {
    "UNAUTHORIZED": "no valid API key",
    "FORBIDDEN": "the key's role may not do this",
    "RATE_LIMITED": "the caller's budget is used up",
    "IDEMPOTENCY_KEY_REUSED": "the Idempotency-Key was used for another request",
    "PRECONDITION_FAILED": "If-Match matches no current ETag",
    "URI_TOO_LONG": "the request line is over 8190 bytes",
    "HEADERS_TOO_LARGE": "a header line is over 8190 bytes, or there are over 100",
}


class _Builder:
    def __init__(self, app: Flask):
        self.app = app
        self.auth_required = app.config["AUTH_REQUIRED"]
        self.rate_limited = app.config["RATELIMIT_ENABLED"]
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
        self.refs = {name: ref for (name, _), ref in refs.items()}
        self.components = definitions.get("$defs", {})

        paths: dict[str, dict] = {}
        for rule, method, op, view in found:
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            paths.setdefault(path, {})[method.lower()] = self.operation(rule, method, op, view)
        self.components["Error"] = error_schema(sorted(ERROR_STATUS))
        # Query models are read into parameters; only what the document refers to stays.
        self.components = _referenced(paths, self.components)
        access = ("Access control is on: every operation but the health probes needs an API key."
                  if self.auth_required else
                  "Access control is off: no key is needed (a key that is sent must be valid, and its role "
                  "is applied).")
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Inventory service API",
                "version": VERSION,
                "description": "库存管理服务 — products, stock levels and an append-only, hash-chained movement "
                               "ledger. Every answer is the JSON envelope `{success, message, data | error}`, "
                               f"messages in Chinese. {access}",
            },
            "servers": [{"url": "/"}],
            "paths": paths,
            "components": {"schemas": self.components, "headers": HEADERS, "securitySchemes": SECURITY_SCHEMES},
        }

    def parameters(self, rule, op: Operation, view) -> list[dict]:
        parameters = [path_parameter(name) for name in rule.arguments]
        if op.query is not None:
            query_ref = self.refs[f"in:{op.query!r}"]["$ref"].rsplit("/", 1)[-1]
            parameters += query_parameters(self.components[query_ref])
        parameters.append(REQUEST_ID_PARAMETER)
        if getattr(view, "idempotent", False):
            parameters.append(IDEMPOTENCY_KEY_PARAMETER)
        if op.conditional:
            parameters.append(IF_MATCH_PARAMETER)
        return parameters

    def error_codes(self, rule, op: Operation, view, role: str | None) -> set[str]:
        codes = {"INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "URI_TOO_LONG", "HEADERS_TOO_LARGE", *op.errors}
        if role is not None:
            codes |= {"UNAUTHORIZED", "FORBIDDEN"}
        if self.rate_limited and rule.endpoint not in EXEMPT_ENDPOINTS:
            codes.add("RATE_LIMITED")
        if op.query is not None or op.body is not None:
            codes.add("VALIDATION_ERROR")
        if op.body is not None or op.upload:
            codes |= {"PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "VALIDATION_ERROR"}
        if rule.arguments:
            codes.add("NOT_FOUND")
        if getattr(view, "idempotent", False):
            codes |= {"CONFLICT", "IDEMPOTENCY_KEY_REUSED", "VALIDATION_ERROR"}
        return codes

    def responses(self, op: Operation, view, codes: set[str]) -> dict[str, Any]:
        success_headers = {"X-Request-ID": header_ref("X-Request-ID")}
        if op.etag:
            success_headers["ETag"] = header_ref("ETag")
        if op.status == 201:
            success_headers["Location"] = header_ref("Location")
        if getattr(view, "idempotent", False):
            success_headers["Idempotent-Replayed"] = header_ref("Idempotent-Replayed")
        data_schema = self.refs[f"data:{op.data!r}"] if op.data is not None else None
        content = FILE_CONTENT if op.download else {
            "application/json": {"schema": envelope(data_schema, op.paginated, op.ledger)}}
        if op.download:
            success_headers["Content-Disposition"] = header_ref("Content-Disposition")
        responses: dict[str, Any] = {str(op.status): {
            "description": op.summary,
            "headers": success_headers,
            "content": content,
        }}
        by_status: dict[int, list[str]] = {}
        for code in sorted(codes):
            by_status.setdefault(ERROR_STATUS[code], []).append(code)
        for status, status_codes in sorted(by_status.items()):
            responses[str(status)] = {
                "description": "; ".join(f"`{code}`" + (f": {ERROR_DESCRIPTIONS[code]}" if code in ERROR_DESCRIPTIONS
                                                          else "") for code in status_codes),
                "headers": {name: header_ref(name) for name in ("X-Request-ID", *ERROR_HEADERS.get(status, ()))},
                "content": {"application/json": {"schema": ERROR_REF}},
                "x-error-codes": status_codes,
            }
        return responses

    def operation(self, rule, method: str, op: Operation, view) -> dict:
        role = _required_role(rule, method)
        responses = self.responses(op, view, self.error_codes(rule, op, view, role))
        if rule.endpoint == "products.create_product":
            responses[str(op.status)]["links"] = PRODUCT_LINKS
        document = {
            "operationId": f"{rule.endpoint.replace('.', '_')}_{method.lower()}"
                           if len(rule.methods - {"HEAD", "OPTIONS"}) > 1 else rule.endpoint.replace(".", "_"),
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": self.parameters(rule, op, view),
            "responses": responses,
        }
        description = op.description
        if role is not None:
            document["x-required-role"] = role
            description += f"\n\nRole needed: `{role}`" + ("." if self.auth_required else
                                                            " (when a key is sent; none is required here).")
        # Security is declared only where it is enforced: a client generated from this
        # document asks for a key exactly when the server would refuse it without one.
        document["security"] = KEY_REQUIRED if role is not None and self.auth_required else []
        if description.strip():
            document["description"] = description.strip()
        if op.body is not None:
            media = {"schema": self.refs[f"in:{op.body!r}"]}
            if op.example is not None:
                media["example"] = op.example
            document["requestBody"] = {"required": True, "content": {"application/json": media}}
        if op.upload:
            document["requestBody"] = UPLOAD_BODY
        return document


def _referenced(paths: dict, schemas: dict[str, dict]) -> dict[str, dict]:
    """The schemas `paths` refer to, directly or through one another, in their order."""
    names: set[str] = set()
    pending = [paths]
    while pending:
        for name in re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(pending.pop())):
            if name not in names:
                names.add(name)
                pending.append(schemas[name])
    return {name: schema for name, schema in schemas.items() if name in names}


def _required_role(rule, method: str) -> str | None:
    """The access policy's answer for a rule, so the document states what is enforced."""
    blueprint = rule.endpoint.rsplit(".", 1)[0] if "." in rule.endpoint else None
    return required_role(rule.endpoint, blueprint, method)


def build_document(app: Flask) -> dict:
    """The whole OpenAPI 3.1 document for `app`."""
    return _Builder(app).build()


def document_for(app: Flask) -> dict:
    """`build_document`, cached on the app: routes do not change after start-up."""
    if "openapi_document" not in app.extensions:
        app.extensions["openapi_document"] = build_document(app)
    return app.extensions["openapi_document"]
