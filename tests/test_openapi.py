"""The OpenAPI document is generated from the code and agrees with the routes."""
import json
import re

import pytest

from main import create_app
from openapi_spec import build_document, is_documented

METHODS = {"get", "post", "put", "patch", "delete"}


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if not is_documented(rule.endpoint):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        found |= {(path, method.lower()) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def _operations(document) -> set[tuple[str, str]]:
    return {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_every_route_has_an_operation_and_every_operation_a_route(app):
    document = build_document(app)
    assert _routes(app) == _operations(document)


def test_document_is_openapi_3_1_and_served_as_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert "/api/stock/batch" in document["paths"]


def test_cli_writes_the_same_document(app, runner, tmp_path):
    target = tmp_path / "openapi.json"
    result = runner.invoke(args=["openapi", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text(encoding="utf-8")) == build_document(app)


def test_write_operations_declare_their_headers_and_error_codes(app):
    add = build_document(app)["paths"]["/api/stock/add"]["post"]
    headers = {p["name"] for p in add["parameters"] if p["in"] == "header"}
    assert {"Idempotency-Key", "X-Request-ID"} <= headers
    codes = {code for status, response in add["responses"].items() if status >= "400"
             for code in response["x-error-codes"]}
    assert {"VALIDATION_ERROR", "NOT_FOUND", "CONFLICT", "IDEMPOTENCY_KEY_REUSED",
            "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "SERVICE_UNAVAILABLE"} <= codes


def test_product_edits_declare_if_match_and_412(app):
    put = build_document(app)["paths"]["/api/products/{product_id}"]["put"]
    assert "If-Match" in {p["name"] for p in put["parameters"]}
    assert "412" in put["responses"]
    assert "ETag" in put["responses"]["200"]["headers"]


def test_request_examples_are_chinese_and_valid(app, client):
    create = build_document(app)["paths"]["/api/products/"]["post"]
    example = create["requestBody"]["content"]["application/json"]["example"]
    assert example["name"] == "测试商品"
    assert client.post("/api/products/", json=example).status_code == 201


def test_unknown_product_on_a_stock_write_is_a_declared_404(app, client):
    """Regression: the fuzzer found 404s the document did not declare."""
    response = client.post("/api/stock/add", json={"product_id": 987654, "quantity": 1})
    assert response.status_code == 404
    assert "404" in build_document(app)["paths"]["/api/stock/add"]["post"]["responses"]


def test_docs_are_served_by_the_app_without_a_cdn(client):
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html
    external = [url for url in re.findall(r"https?://[^\s\"']+", html) if not url.startswith("http://localhost/")]
    assert external == []
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert f"/docs/{asset}" in html
        response = client.get(f"/docs/{asset}")
        assert response.status_code == 200 and len(response.get_data()) > 1000


def test_index_links_to_the_docs(client):
    links = client.get("/").get_json()["data"]["links"]
    assert links["docs"] == "/docs/" and links["openapi"] == "/openapi.json"


def test_every_reference_resolves(app):
    """Regression: the fuzzer found list responses pointing at a missing Pagination schema."""
    document = build_document(app)
    text = json.dumps(document)
    names = set(re.findall(r'"#/components/schemas/([^"]+)"', text))
    assert names and names <= set(document["components"]["schemas"])


# ---- what the document states is what the running configuration enforces ----

def _operations_of(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_title_is_ascii_so_generated_packages_get_a_valid_name(app):
    info = build_document(app)["info"]
    assert info["title"].isascii() and "库存管理服务" in info["description"]


def test_keys_are_declared_only_where_they_are_required(app, db_url):
    """Access control off: no operation asks for a key. On: every one but the probes does."""
    assert all(op["security"] == [] for _, _, op in _operations_of(build_document(app)))
    secured = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "AUTH_REQUIRED": True})
    for path, _, op in _operations_of(build_document(secured)):
        if "x-required-role" in op:
            assert op["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}], path
        else:
            assert op["security"] == [] and path in {"/", "/health", "/health/live", "/health/ready"}


def test_rate_limits_are_declared_only_when_enforced(app, db_url):
    """Verify's own limit on pages at once holds in every configuration."""
    document = build_document(app)
    statuses = {status for path, _, op in _operations_of(document) if path != "/api/logs/verify"
                for status in op["responses"]}
    assert "429" not in statuses
    assert "429" in document["paths"]["/api/logs/verify"]["get"]["responses"]
    limited = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "RATELIMIT_ENABLED": True})
    assert "429" in build_document(limited)["paths"]["/api/stock/"]["get"]["responses"]


def test_every_error_answer_refers_to_one_error_schema(app):
    document = build_document(app)
    for path, method, op in _operations_of(document):
        for status, response in op["responses"].items():
            if status >= "400":
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
                assert response["x-error-codes"], (path, method, status)
    every_code = document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    assert {"VALIDATION_ERROR", "DUPLICATE", "INSUFFICIENT_STOCK", "URI_TOO_LONG"} <= set(every_code)


def test_request_ids_are_described_as_the_server_treats_them(app, client):
    """Any value is taken (an unfit one is replaced), so the request parameter has no pattern;
    the answer's header always has one."""
    document = build_document(app)
    parameter = next(p for p in document["paths"]["/api/stock/"]["get"]["parameters"] if p["name"] == "X-Request-ID")
    assert "pattern" not in parameter["schema"]
    assert re.fullmatch(document["components"]["headers"]["X-Request-ID"]["schema"]["pattern"],
                        client.get("/api/stock/", headers={"X-Request-ID": "not one!"}).headers["X-Request-ID"])


def test_an_empty_edit_is_declared_and_refused(app, client, create_product):
    update = build_document(app)["components"]["schemas"]["ProductUpdate"]
    assert update["minProperties"] == 1
    product = create_product()
    assert client.patch(f"/api/products/{product['id']}", json={}).status_code == 400


def test_an_empty_if_match_is_declared_and_answers_412(app, client, create_product):
    put = build_document(app)["paths"]["/api/products/{product_id}"]["put"]
    if_match = next(p for p in put["parameters"] if p["name"] == "If-Match")
    assert "empty one included, answers 412" in if_match["description"] and "412" in put["responses"]
    product = create_product()
    assert client.put(f"/api/products/{product['id']}", json={"price": 1}, headers={"If-Match": ""}).status_code == 412


def test_as_of_and_as_of_seq_together_are_declared_and_refused(app, client, create_product):
    """They travel as one exploded `point` parameter whose schema forbids both at once."""
    parameters = build_document(app)["paths"]["/api/stock/product/{product_id}"]["get"]["parameters"]
    point = next(p for p in parameters if p["name"] == "point")
    assert (point["style"], point["explode"]) == ("form", True)
    assert point["schema"]["not"] == {"required": ["as_of", "as_of_seq"]}
    product = create_product(initial_quantity=1)
    both = client.get(f"/api/stock/product/{product['id']}?as_of=2030-01-01&as_of_seq=1")
    assert both.status_code == 400
    assert client.get(f"/api/stock/product/{product['id']}?as_of_seq=1").get_json()["data"]["quantity"] == 1


def test_dates_are_declared_as_dates(app):
    schemas = build_document(app)["components"]["schemas"]
    assert schemas["DailyOut"]["properties"]["date"] == {"format": "date", "title": "Date", "type": "string"}


def test_every_path_and_query_parameter_has_an_example(app):
    for path, method, op in _operations_of(build_document(app)):
        for parameter in op["parameters"]:
            if parameter["in"] in ("path", "query"):
                assert "example" in parameter, (method, path, parameter["name"])
                if parameter["in"] == "path":
                    assert parameter["example"] == 1


@pytest.mark.parametrize("query, refused", [
    ({"page": 2, "after": "WyJpZCIsMV0"}, True), ({"after": "WyJpZCIsMV0", "before": "WyJpZCIsMV0"}, True),
    ({"page": 1, "before_id": 5}, False), ({"page": 3}, False), ({"after": "not-one-we-made"}, True),
])
def test_a_lists_page_number_and_cursors_are_one_declared_parameter(app, client, query, refused):
    """`paging` carries the rule the server applies: a cursor with page 1 or none, one at a time."""
    parameters = build_document(app)["paths"]["/api/logs/"]["get"]["parameters"]
    paging = next(p for p in parameters if p["name"] == "paging")
    assert set(paging["schema"]["properties"]) == {"page", "after", "before", "before_id"}
    assert {"required": ["after", "before"]} in paging["schema"]["not"]["anyOf"]
    assert (client.get("/api/logs/", query_string=query).status_code == 400) is refused
