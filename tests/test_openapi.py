"""The OpenAPI document is generated from the code and agrees with the routes."""
import json
import re

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
    codes = {
        code
        for status, response in add["responses"].items() if status >= "400"
        for code in response["content"]["application/json"]["schema"]["properties"]["error"]["properties"]["code"]["enum"]
    }
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
