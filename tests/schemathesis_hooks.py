"""Rules of the API that JSON Schema cannot state, taught to the contract fuzz
(tests/test_contract_fuzz.py): applied to each request just before it is sent, in every
phase, so that no request the document's descriptions call invalid is sent as valid."""
import uuid

import schemathesis

from routes.idempotency import VALID_KEY


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _thresholds_in_order(body) -> None:
    """`max_quantity` below a `min_quantity` sent in the same body is a 400 (product create,
    edit, stocktake): JSON Schema cannot compare two fields, so the two are swapped. Both
    fields have the same bounds, so a body that breaks them still breaks them."""
    if isinstance(body, dict):
        low, high = body.get("min_quantity"), body.get("max_quantity")
        if _number(low) and _number(high) and high < low:
            body["min_quantity"], body["max_quantity"] = high, low


def _two_warehouses(body) -> None:
    """A transfer from a warehouse to itself is a 400 (its schema's description says so):
    the destination of such a body, alone or in a batch, is moved on by one."""
    changes = body.get("changes") if isinstance(body, dict) else None
    for change in changes if isinstance(changes, list) else [body]:
        if isinstance(change, dict) and _number(change.get("from_warehouse_id")) and (
                change.get("from_warehouse_id") == change.get("to_warehouse_id")):
            change["to_warehouse_id"] = change["from_warehouse_id"] + (1 if change["from_warehouse_id"] < 2**62 else -1)


def _fresh_idempotency_key(headers) -> None:
    """A client draws a fresh Idempotency-Key for each new request. The fuzzer's keys repeat
    ("0", the document's example…), so most writes would only meet 422 (the key was used
    for another request): a well-formed key is made unique; a malformed one is sent as
    drawn, for the 400 it must get."""
    key = (headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key) and len(key) <= 222:
        headers["Idempotency-Key"] = f"{key}-{uuid.uuid4().hex}"


def _no_drawn_cursors(case) -> None:
    """A list's `after`/`before` cursor is opaque: only one the service answered is valid,
    and one drawn at random never is (the document says so), so valid requests carry none."""
    if case.query and (case.meta is None or case.meta.generation.mode.is_positive):
        for name in ("after", "before"):
            case.query.pop(name, None)


IMPORT_PATH = "/api/import/products"


def _drawn_as_a_file(case) -> bool:
    """Whether the case is drawn as valid and its file has the document's shape: a string
    or bytes, as the body or as the form's `file` (beside which a form may carry other
    fields, which the service ignores)."""
    if case.meta is not None and not case.meta.generation.mode.is_positive:
        return False
    body = case.body
    if case.media_type == "multipart/form-data":
        return isinstance(body, dict) and isinstance(body.get("file"), str | bytes)
    return isinstance(body, str | bytes)


def _spreadsheet_upload(case) -> None:
    """An import's body must be a spreadsheet, which no schema can say of a string or a
    file: a request drawn as valid carries a real one. It goes in as text (a CSV), since
    schemathesis checks an edited case against the document again and takes bytes for no
    string at all, which would mark this valid request as one drawn to be refused."""
    if case.operation.path != IMPORT_PATH or not _drawn_as_a_file(case):
        return
    sku = f"FUZZ-{uuid.uuid4().hex[:12]}"
    text = f"sku,name,price,quantity\r\n{sku},模糊测试,1.50,3\r\n"
    case.body = {**case.body, "file": text} if case.media_type == "multipart/form-data" else text


def _query_names(operation) -> set[str]:
    """The names an operation's query string may carry: its parameters', and inside an
    exploded object parameter (`point`, `paging`) the object's properties."""
    names = set()
    for parameter in operation.query:
        definition = parameter.definition
        properties = definition.get("schema", {}).get("properties")
        names |= set(properties) if definition.get("explode") and properties else {definition["name"]}
    return names


@schemathesis.hook
def filter_query(context, query) -> bool:
    """Names the document does not declare reach the service as unknown query parameters,
    which it ignores (as every unknown one). Schemathesis forgives that for plain
    parameters but not for names it drew inside an exploded object, which arrive as
    such names: they are not drawn."""
    return context.operation is None or not query or set(query) <= _query_names(context.operation)


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    _thresholds_in_order(case.body)
    _two_warehouses(case.body)
    _fresh_idempotency_key(case.headers)
    _no_drawn_cursors(case)
    _spreadsheet_upload(case)
