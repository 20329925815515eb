"""Bad input changes nothing and answers the error envelope, never 500 (SPEC §2, §4.4)."""
import json
import re

import pytest

from openapi_spec import build_document
from schemas.common import MAX_PAGE
from tests.helpers import assert_error

MISSING = object()  # marks a field left out of the body
PID = object()      # replaced by the fixture product's id
MIB = 1024 * 1024

STOCK_CHANGE = {"product_id": PID, "quantity": 5, "reason": "应当不被保存", "operator": "测试员"}
STOCK_ADJUST = {"product_id": PID, "quantity": 3, "min_quantity": 1, "location": "Z-99", "reason": "应当不被保存"}
PRODUCT_CREATE = {"name": "新商品", "sku": "NEW-1", "price": 9.99, "category": "新类", "initial_quantity": 4}
PRODUCT_UPDATE = {"description": "应当不被保存"}

WRITE_ENDPOINTS = [
    ("POST", "/api/products/", PRODUCT_CREATE),
    ("PUT", "/api/products/{id}", PRODUCT_UPDATE),
    ("PATCH", "/api/products/{id}", PRODUCT_UPDATE),
    ("POST", "/api/stock/add", STOCK_CHANGE),
    ("POST", "/api/stock/reduce", STOCK_CHANGE),
    ("POST", "/api/stock/adjust", STOCK_ADJUST),
]
WRITE_IDS = [f"{method} {path}" for method, path, _ in WRITE_ENDPOINTS]


# ---- helpers ----

@pytest.fixture
def product(create_product):
    return create_product(name="现有商品", sku="EXISTING", category="文具", initial_quantity=10,
                          min_quantity=2, max_quantity=50, location="A-01")


def snapshot(client) -> dict:
    """Everything a client can see: products, stock levels and the ledger."""
    return {
        path: client.get(path, query_string={"per_page": 100}).get_json()["data"]
        for path in ("/api/products/", "/api/stock/", "/api/logs/")
    }


def body_with(valid: dict, pid: int, **overrides) -> dict:
    body = {**valid, **overrides}
    return {key: (pid if value is PID else value) for key, value in body.items() if value is not MISSING}


def send(client, method: str, path: str, product_id: int, **kwargs):
    return client.open(path.format(id=product_id), method=method, **kwargs)




def assert_rejected(client, product, method: str, path: str, *, status=400, code="VALIDATION_ERROR",
                    field: str | None = None, **request) -> dict:
    """The request fails with the envelope, names `field`, and changes nothing; its details."""
    before = snapshot(client)
    details = assert_error(send(client, method, path, product["id"], **request), status, code)
    if field is not None:
        assert field in details, details
    assert snapshot(client) == before
    return details


# ---- field by field ----

def cases(*pairs):
    return [pytest.param(field, value, id=f"{field}={'<missing>' if value is MISSING else repr(value)[:20]}")
            for field, value in pairs]


QUANTITY_CHANGE_CASES = cases(
    ("quantity", "5"), ("quantity", 1.5), ("quantity", True), ("quantity", None), ("quantity", 0),
    ("quantity", -1), ("quantity", 1_000_000_001), ("quantity", [5]), ("quantity", {"n": 5}), ("quantity", MISSING),
    ("product_id", "1"), ("product_id", 1.5), ("product_id", True), ("product_id", None), ("product_id", 0),
    ("product_id", -1), ("product_id", 2**63), ("product_id", MISSING),
    ("reason", 123), ("reason", True), ("reason", ["a"]), ("reason", "x" * 256),
    ("operator", 123), ("operator", {"name": "x"}), ("operator", "x" * 101),
    ("colour", "red"), ("expected", 1),
)


@pytest.mark.parametrize("field, value", QUANTITY_CHANGE_CASES)
@pytest.mark.parametrize("action", ["add", "reduce"])
def test_bad_stock_change_is_rejected(client, product, action, field, value):
    body = body_with(STOCK_CHANGE, product["id"], **{field: value})
    assert_rejected(client, product, "POST", f"/api/stock/{action}", field=field, json=body)


ADJUST_CASES = cases(
    ("quantity", -1), ("quantity", "5"), ("quantity", 1.5), ("quantity", True), ("quantity", None),
    ("quantity", 1_000_000_001), ("quantity", MISSING),
    ("product_id", "1"), ("product_id", None), ("product_id", 0), ("product_id", MISSING),
    ("min_quantity", -1), ("min_quantity", "2"), ("min_quantity", 2.5), ("min_quantity", None), ("min_quantity", True),
    ("max_quantity", -1), ("max_quantity", "9"), ("max_quantity", False), ("max_quantity", 1_000_000_001),
    ("location", 5), ("location", "x" * 101),
    ("reason", "x" * 256), ("operator", 7), ("colour", "red"),
)


@pytest.mark.parametrize("field, value", ADJUST_CASES)
def test_bad_adjust_is_rejected(client, product, field, value):
    body = body_with(STOCK_ADJUST, product["id"], **{field: value})
    assert_rejected(client, product, "POST", "/api/stock/adjust", field=field, json=body)


CREATE_CASES = cases(
    ("name", MISSING), ("name", ""), ("name", "   "), ("name", "x" * 201), ("name", 123), ("name", None), ("name", ["a"]),
    ("sku", MISSING), ("sku", ""), ("sku", "x" * 65), ("sku", "has space"), ("sku", 42), ("sku", None),
    ("price", MISSING), ("price", "19.99"), ("price", -0.01), ("price", True), ("price", None), ("price", 1.234),
    ("price", 10_000_000_000), ("price", [1]),
    ("description", 123), ("description", "x" * 2001),
    ("category", 123), ("category", "x" * 101),
    ("min_quantity", -1), ("min_quantity", "1"), ("min_quantity", 1.5), ("min_quantity", None),
    ("max_quantity", -1), ("max_quantity", "10"),
    ("location", 1), ("location", "x" * 101),
    ("initial_quantity", -1), ("initial_quantity", "5"), ("initial_quantity", 1.5), ("initial_quantity", None),
    ("initial_quantity", 1_000_000_001),
    ("stock", {"quantity": 1}), ("quantity", 5), ("id", 7),
)


@pytest.mark.parametrize("field, value", CREATE_CASES)
def test_bad_product_create_is_rejected(client, product, field, value):
    body = body_with(PRODUCT_CREATE, product["id"], **{field: value})
    assert_rejected(client, product, "POST", "/api/products/", field=field, json=body)


UPDATE_CASES = cases(
    ("name", None), ("name", ""), ("name", "x" * 201), ("name", 1),
    ("sku", None), ("sku", "a b"), ("sku", "x" * 65), ("sku", 5),
    ("price", None), ("price", -1), ("price", "1"), ("price", 0.001), ("price", False),
    ("description", 5), ("description", "x" * 2001), ("category", "x" * 101), ("category", 1),
    ("min_quantity", None), ("min_quantity", -1), ("min_quantity", "3"),
    ("max_quantity", "3"), ("max_quantity", -1),
    ("location", "x" * 101),
    ("initial_quantity", 5), ("quantity", 5), ("id", 99), ("created_at", "2020-01-01"),
)


@pytest.mark.parametrize("field, value", UPDATE_CASES)
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_bad_product_update_is_rejected(client, product, method, field, value):
    body = body_with(PRODUCT_UPDATE, product["id"], **{field: value})
    assert_rejected(client, product, method, "/api/products/{id}", field=field, json=body)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_empty_update_is_rejected(client, product, method):
    assert_rejected(client, product, method, "/api/products/{id}", field="body", json={})


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/products/", {**PRODUCT_CREATE, "min_quantity": 10, "max_quantity": 5}),
    ("PUT", "/api/products/{id}", {"min_quantity": 10, "max_quantity": 5}),
    ("PATCH", "/api/products/{id}", {"min_quantity": 10, "max_quantity": 5}),
    ("POST", "/api/stock/adjust", {"product_id": PID, "quantity": 3, "min_quantity": 10, "max_quantity": 5}),
], ids=["create", "put", "patch", "adjust"])
def test_max_quantity_below_min_quantity_in_one_body_is_rejected(client, product, method, path, body):
    assert_rejected(client, product, method, path, field="max_quantity", json=body_with(body, product["id"]))


@pytest.mark.parametrize("method, path, body, stored", [
    ("PUT", "/api/products/{id}", {"max_quantity": 1}, {"min_quantity": 2, "max_quantity": 1}),
    ("PATCH", "/api/products/{id}", {"min_quantity": 51}, {"min_quantity": 51, "max_quantity": 50}),
    ("POST", "/api/stock/adjust", {"product_id": PID, "quantity": 3, "max_quantity": 1},
     {"min_quantity": 2, "max_quantity": 1}),
], ids=["put", "patch", "adjust"])
def test_thresholds_that_cross_the_stored_ones_conflict(client, product, method, path, body, stored):
    """Each value is fine on its own; with the product's other threshold it is not (409)."""
    details = assert_rejected(client, product, method, path, status=409, code="CONFLICT",
                              json=body_with(body, product["id"]))
    assert details == stored


# ---- whole bodies ----

BAD_BODIES = [
    pytest.param(b'{"product_id": 1, "quantity": ', id="truncated"),
    pytest.param(b'{"quantity": 1,}', id="trailing-comma"),
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b'[{"product_id": 1, "quantity": 1}]', id="array-of-object"),
    pytest.param(b'"text"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"", id="empty"),
    pytest.param(b'{"quantity": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="nested-100000-deep"),
    pytest.param(b'{"name": "\xff\xfe"}', id="not-utf8"),
]


@pytest.mark.parametrize("raw", BAD_BODIES)
@pytest.mark.parametrize("method, path, _valid", WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_body_that_is_not_a_json_object_is_rejected(client, product, method, path, _valid, raw):
    assert_rejected(client, product, method, path, field="body", data=raw, content_type="application/json")


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("method, path, valid", WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_write_without_json_content_type_is_unsupported(client, product, method, path, valid, content_type):
    raw = json.dumps(body_with(valid, product["id"]))
    request = {"data": raw} if content_type is None else {"data": raw, "content_type": content_type}
    assert_rejected(client, product, method, path, status=415, code="UNSUPPORTED_MEDIA_TYPE", **request)


@pytest.mark.parametrize("method, path, valid", WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_body_over_one_mib_is_too_large(client, product, method, path, valid):
    raw = json.dumps({**body_with(valid, product["id"]), "reason": "x" * MIB}).encode()
    assert_rejected(client, product, method, path, status=413, code="PAYLOAD_TOO_LARGE",
                    data=raw, content_type="application/json")


@pytest.mark.parametrize("raw, field", [
    pytest.param('{"name": "x", "sku": "N-1", "price": NaN}', "price", id="price-NaN"),
    pytest.param('{"name": "x", "sku": "N-1", "price": Infinity}', "price", id="price-Infinity"),
    pytest.param('{"name": "x", "sku": "N-1", "price": 1e400}', "price", id="price-1e400"),
    pytest.param('{"name": "x", "sku": "N-1", "price": 1, "initial_quantity": 1e400}', "initial_quantity", id="qty-1e400"),
])
def test_non_finite_numbers_are_rejected(client, product, raw, field):
    assert_rejected(client, product, "POST", "/api/products/", field=field, data=raw, content_type="application/json")


@pytest.mark.parametrize("spelled, message", [
    ("1e999999999", "不能大于"), ("-1e999999999", "不能小于"), ("1" + "0" * 100_000 + ".0", "不能大于"),
    ("1e-999999999", "必须是整数"),
], ids=["1e999999999", "-1e999999999", "100000-digits", "1e-999999999"])
@pytest.mark.parametrize("field", ["quantity", "product_id"])
def test_numbers_far_beyond_every_bound_are_refused_by_the_bound(client, product, field, spelled, message):
    """Read off the exponent, never turned into a Python int: `int()` of 1e999999999
    would hold the worker for minutes."""
    numbers = {"product_id": product["id"], "quantity": 5, field: spelled}
    body = '{"product_id": %(product_id)s, "quantity": %(quantity)s}' % numbers
    details = assert_rejected(client, product, "POST", "/api/stock/add", field=field, data=body,
                              content_type="application/json")
    assert details[field].startswith(message)


CHINESE = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("path, body", [
    ("/api/products/", {"name": "x", "sku": "有 空格", "price": 1}),
    ("/api/stock/batch", {"changes": [{"action": "bogus", "product_id": 1, "quantity": 1}]}),
    ("/api/stock/batch", {"changes": [{"product_id": 1, "quantity": 1}]}),
    ("/api/stock/batch", {"changes": [{"action": "add", "product_id": 1, "quantity": 1}], "dry_run": "yes"}),
], ids=["sku-pattern", "batch-unknown-action", "batch-no-action", "dry-run-not-boolean"])
def test_field_errors_are_explained_in_chinese(client, product, path, body):
    details = assert_rejected(client, product, "POST", path, json=body)
    assert details and all(CHINESE.search(message) for message in details.values()), details


def _unknown_fields(count: int) -> dict:
    return {f"x{number}": 0 for number in range(count)}


@pytest.mark.parametrize("body, errors", [
    pytest.param(lambda pid: {"product_id": pid, "quantity": 1, **_unknown_fields(92_000)}, 92_000, id="one-change"),
    pytest.param(lambda pid: {"changes": [{"action": "add", "product_id": pid, "quantity": 1, **_unknown_fields(900)}
                                          for _ in range(100)]}, 90_000, id="batch"),
])
def test_error_details_name_the_first_fifty_fields_and_count_the_rest(client, product, body, errors):
    """A 1 MB body of unknown fields gets a short answer, not one line for each of them."""
    raw = json.dumps(body(product["id"]), separators=(",", ":"))
    assert len(raw) < MIB
    path = "/api/stock/batch" if "changes" in raw[:12] else "/api/stock/add"
    response = send(client, "POST", path, product["id"], data=raw, content_type="application/json")
    details = assert_error(response, 400, "VALIDATION_ERROR")
    assert len(details) == 51 and details["_omitted"] == errors - 50
    assert all(message == "不支持的字段" for field, message in details.items() if field != "_omitted")
    assert len(response.get_data()) < 8 * 1024


# ---- accepted spellings ----

@pytest.mark.parametrize("spelled, value", [("5", 5), ("5.0", 5), ("1e2", 100), ("1E1", 10)])
@pytest.mark.parametrize("action, after", [
    ("add", lambda before, n: before + n),
    ("reduce", lambda before, n: before - n),
    ("adjust", lambda before, n: n),
], ids=["add", "reduce", "adjust"])
def test_whole_number_floats_are_accepted_as_integers(client, create_product, action, after, spelled, value):
    product = create_product(initial_quantity=1000)
    raw = f'{{"product_id": {product["id"]}, "quantity": {spelled}}}'
    response = client.post(f"/api/stock/{action}", data=raw, content_type="application/json")
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert data["stock"]["quantity"] == after(1000, value)
    assert type(data["stock"]["quantity"]) is int
    assert data["log"]["after_quantity"] == after(1000, value)


def test_surrounding_spaces_are_trimmed(client):
    response = client.post("/api/products/", json={"name": "  空格  ", "sku": " SP-1 ", "price": 1})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert (data["name"], data["sku"]) == ("空格", "SP-1")


def test_json_content_type_with_charset_is_accepted(client):
    raw = json.dumps({"name": "字符集", "sku": "CS-1", "price": 1}, ensure_ascii=False).encode()
    response = client.post("/api/products/", data=raw, content_type="application/json; charset=utf-8")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["name"] == "字符集"


@pytest.mark.parametrize("content_type", ["application/json; charset=UTF-8", "application/json;charset=Utf-8",
                                          'application/json; charset="utf-8"'])
def test_utf8_declared_in_any_spelling_is_accepted(client, content_type):
    raw = json.dumps({"name": "字符集", "sku": "CS-1", "price": 1}, ensure_ascii=False).encode()
    response = client.post("/api/products/", data=raw, content_type=content_type)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["name"] == "字符集"


@pytest.mark.parametrize("charset", ["iso-8859-1", "latin1", "gbk", "utf-16", "us-ascii", "utf8"])
@pytest.mark.parametrize("method, path, valid", WRITE_ENDPOINTS, ids=WRITE_IDS)
def test_json_declared_in_another_charset_is_unsupported(client, product, method, path, valid, charset):
    """JSON is UTF-8 (RFC 8259): a body that says otherwise is refused, never decoded as
    UTF-8 and stored as a different text."""
    raw = json.dumps({**body_with(valid, product["id"]), "reason": "café"}, ensure_ascii=False).encode()
    details = assert_rejected(client, product, method, path, status=415, code="UNSUPPORTED_MEDIA_TYPE",
                              data=raw, content_type=f"application/json; charset={charset}")
    assert details == {"charset": charset}


def test_a_batch_declared_in_another_charset_is_unsupported(client, product):
    raw = json.dumps({"changes": [{"action": "add", "product_id": product["id"], "quantity": 1}]}).encode()
    assert_rejected(client, product, "POST", "/api/stock/batch", status=415, code="UNSUPPORTED_MEDIA_TYPE",
                    data=raw, content_type="application/json; charset=iso-8859-1")


# ---- query strings ----

QUERY_CASES = [
    ("/api/products/", {"page": "0"}, "page"),
    ("/api/products/", {"page": "abc"}, "page"),
    ("/api/products/", {"page": "1.5"}, "page"),
    ("/api/products/", {"page": "-1"}, "page"),
    ("/api/products/", {"per_page": "0"}, "per_page"),
    ("/api/products/", {"per_page": "101"}, "per_page"),
    ("/api/products/", {"sort": "bogus"}, "sort"),
    ("/api/products/", {"sort": "-bogus"}, "sort"),
    ("/api/products/", {"sort": "quantity"}, "sort"),
    ("/api/products/", {"min_price": "abc"}, "min_price"),
    ("/api/products/", {"min_price": "nan"}, "min_price"),
    ("/api/products/", {"min_price": "1.234"}, "min_price"),
    ("/api/products/", {"max_price": "-1"}, "max_price"),
    ("/api/stock/", {"low_only": "maybe"}, "low_only"),
    ("/api/stock/", {"low_only": "yes"}, "low_only"),
    ("/api/stock/", {"sort": "bogus"}, "sort"),
    ("/api/stock/", {"page": "0"}, "page"),
    ("/api/stock/", {"per_page": "101"}, "per_page"),
    ("/api/stock/low-stock", {"page": "0"}, "page"),
    ("/api/stock/low-stock", {"per_page": "abc"}, "per_page"),
    ("/api/logs/", {"end_date": "garbage"}, "end_date"),
    ("/api/logs/", {"start_date": "2026-13-45"}, "start_date"),
    ("/api/logs/", {"end_date": "2026-02-30"}, "end_date"),
    ("/api/logs/", {"action": "bogus"}, "action"),
    ("/api/logs/", {"product_id": "abc"}, "product_id"),
    ("/api/logs/", {"product_id": "0"}, "product_id"),
    ("/api/logs/", {"page": "0"}, "page"),
    ("/api/logs/", {"per_page": "101"}, "per_page"),
    ("/api/logs/statistics", {"end_date": "garbage"}, "end_date"),
    ("/api/logs/statistics", {"start_date": "yesterday"}, "start_date"),
    ("/api/logs/statistics", {"product_id": "abc"}, "product_id"),
    ("/api/logs/product/{id}", {"per_page": "101"}, "per_page"),
    ("/api/logs/product/{id}", {"page": "abc"}, "page"),
]


@pytest.mark.parametrize("path, query, field", QUERY_CASES,
                         ids=[f"{path} {next(iter(q.items()))}" for path, q, _ in QUERY_CASES])
def test_bad_query_parameter_is_rejected(client, product, path, query, field):
    assert_rejected(client, product, "GET", path, field=field, query_string=query)


TEXT_FILTERS = [("/api/products/", "q"), ("/api/products/", "category"), ("/api/stock/", "q"),
                ("/api/stock/", "category"), ("/api/stock/", "location"), ("/api/logs/", "operator")]


@pytest.mark.parametrize("text", ["\x00", "现有\x00", "A-\x0001", "a\x1fb", "文\x7f", "文\x85具", "现有\t商品", "a\nb"],
                         ids=["NUL", "NUL-after-text", "NUL-inside", "US", "DEL", "NEL", "tab", "newline"])
@pytest.mark.parametrize("path, field", TEXT_FILTERS, ids=[f"{path} {field}" for path, field in TEXT_FILTERS])
def test_a_control_character_in_a_text_filter_is_refused(client, product, path, field, text):
    """SQLite's LIKE ends a pattern at NUL and MySQL's collations skip control characters,
    so `?q=%00` matched every row: such a filter is refused, on every list."""
    details = assert_rejected(client, product, "GET", path, field=field, query_string={field: text})
    assert details[field] == "不能包含控制字符"


@pytest.mark.parametrize("path, field", TEXT_FILTERS, ids=[f"{path} {field}" for path, field in TEXT_FILTERS])
def test_a_text_filter_without_control_characters_still_matches(client, product, path, field):
    value = {"q": "现有", "category": "文具", "location": "A-01", "operator": "初始化"}[field]
    client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1, "operator": "初始化"})
    response = client.get(path, query_string={field: value})
    assert response.status_code == 200 and response.get_json()["data"]["pagination"]["total"] >= 1


@pytest.mark.parametrize("path", ["/api/logs/", "/api/logs/statistics"])
@pytest.mark.parametrize("query", [
    {"end_date": "9999-12-31"},
    {"start_date": "0001-01-01"},
    {"end_date": "9999-12-31T23:59:59-14:00"},
    {"start_date": "0001-01-01T00:00:00+14:00"},
], ids=["end-9999", "start-0001", "end-9999-offset", "start-0001-offset"])
def test_extreme_dates_never_cause_a_server_error(client, product, path, query):
    response = client.get(path, query_string=query)
    assert response.status_code in (200, 400), response.get_json()
    assert response.get_json()["success"] is (response.status_code == 200)


# ---- routes, methods, ids ----

@pytest.mark.parametrize("path", ["/api/nope", "/nope", "/api/products/abc", "/api/products/0",
                                  "/api/products/-1", "/api/stock/product/abc", "/api/logs/x/y"])
def test_unknown_route_is_json_not_found(client, path):
    assert_error(client.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize("method, path", [
    ("DELETE", "/api/products/"),
    ("POST", "/api/products/{id}"),
    ("GET", "/api/stock/add"),
    ("PUT", "/api/stock/reduce"),
    ("DELETE", "/api/stock/adjust"),
    ("POST", "/api/logs/"),
    ("DELETE", "/api/logs/actions"),
    ("POST", "/health"),
])
def test_wrong_method_is_json_method_not_allowed(client, product, method, path):
    response = send(client, method, path, product["id"])
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert method not in response.headers.get("Allow", "")


@pytest.mark.parametrize("path, allowed", [
    ("/api/products/", {"GET", "HEAD", "POST", "OPTIONS"}),
    ("/api/products/{id}", {"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"}),
    ("/api/stock/add", {"POST", "OPTIONS"}),
])
def test_options_answers_the_allowed_methods_in_the_envelope(client, product, path, allowed):
    response = send(client, "OPTIONS", path, product["id"])
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert set(response.get_json()["data"]["allow"]) == allowed
    assert set(response.allow) == allowed


@pytest.mark.parametrize("path", ["/api/products/", "/api/stock/", "/api/stock/low-stock", "/api/logs/",
                                  "/api/logs/product/{id}"])
@pytest.mark.parametrize("page, per_page", [(1_000_001, 1), (MAX_PAGE, 100)])
def test_any_page_number_within_64_bits_is_a_page(client, product, path, page, per_page):
    response = send(client, "GET", path, product["id"], query_string={"page": page, "per_page": per_page})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["items"] == []
    assert response.get_json()["data"]["pagination"]["page"] == page


def test_page_past_the_largest_is_rejected(client, product):
    assert_rejected(client, product, "GET", "/api/logs/", field="page", query_string={"page": MAX_PAGE + 1})


HUGE_IDS = ["99999999999999999999", "999999999999999999"]


@pytest.mark.parametrize("huge", HUGE_IDS)
@pytest.mark.parametrize("method, path", [
    ("GET", "/api/products/{}"),
    ("PUT", "/api/products/{}"),
    ("PATCH", "/api/products/{}"),
    ("DELETE", "/api/products/{}"),
    ("GET", "/api/stock/product/{}"),
    ("GET", "/api/logs/{}"),
    ("GET", "/api/logs/product/{}"),
])
def test_huge_ids_are_not_found(client, product, method, path, huge):
    before = snapshot(client)
    assert_error(client.open(path.format(huge), method=method, json={"name": "x"}), 404, "NOT_FOUND")
    assert snapshot(client) == before


@pytest.mark.parametrize("action", ["add", "reduce", "adjust"])
def test_largest_valid_product_id_in_a_body_is_not_found(client, product, action):
    body = {"product_id": 2**63 - 1, "quantity": 1}
    assert_rejected(client, product, "POST", f"/api/stock/{action}", status=404, code="NOT_FOUND", json=body)


# ---- request ids ----

REQUESTS = [
    ("GET", "/"), ("GET", "/health"), ("GET", "/api/products/"), ("GET", "/api/nope"),
    ("DELETE", "/api/logs/"), ("POST", "/api/stock/add"), ("GET", "/api/products/999999999"),
]


@pytest.mark.parametrize("method, path", REQUESTS)
def test_every_response_has_a_request_id(client, method, path):
    response = client.open(path, method=method, json={} if method == "POST" else None)
    assert response.headers.get("X-Request-ID")


@pytest.mark.parametrize("method, path", REQUESTS)
def test_request_id_echoes_the_clients(client, method, path):
    response = client.open(path, method=method, headers={"X-Request-ID": "client-req-42.a:b"},
                           json={} if method == "POST" else None)
    assert response.headers["X-Request-ID"] == "client-req-42.a:b"


def test_request_ids_differ_between_requests(client):
    assert client.get("/").headers["X-Request-ID"] != client.get("/").headers["X-Request-ID"]


def test_unexpected_error_is_json_without_internals(app, client):
    def explode():
        raise RuntimeError("SELECT secret FROM internals")

    app.add_url_rule("/api/_explode", "explode", explode)
    response = client.get("/api/_explode")
    assert_error(response, 500, "INTERNAL_ERROR")
    assert b"secret" not in response.data and b"Traceback" not in response.data
    assert response.headers.get("X-Request-ID")


# Unicode's White_Space, and characters often taken for whitespace that are not.
WHITE_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
LOOKALIKES = "\x1c\x1d\x1e\x1f\u180e\u200b\ufeff"


@pytest.mark.parametrize("character", WHITE_SPACE + LOOKALIKES, ids=lambda c: f"U+{ord(c):04X}")
def test_codes_and_the_documents_pattern_agree_on_whitespace(client, character):
    """Around a SKU, Unicode's whitespace is trimmed and inside it refused; anything else is
    part of the code. The document's pattern says exactly the same."""
    pattern = re.compile(build_document(client.application)["components"]["schemas"]["ProductCreate"]
                         ["properties"]["sku"]["pattern"])
    around, inside = f"{character}A-1{character}", f"A{character}1"
    created = client.post("/api/products/", json={"name": "空白", "sku": around, "price": 1})
    assert created.status_code == 201
    assert created.get_json()["data"]["sku"] == ("A-1" if character in WHITE_SPACE else around)
    refused = client.post("/api/products/", json={"name": "空白", "sku": inside, "price": 1}).status_code
    assert refused == (400 if character in WHITE_SPACE else 201)
    assert bool(pattern.search(around)) and bool(pattern.search(inside)) == (character not in WHITE_SPACE)
