"""The web console through the Flask test client: pages, the `/` redirect, CSRF,
validation messages equal to the API's, friendly error pages (SPEC §2, §5)."""
import re
from decimal import Decimal
from html import unescape

import pytest
from sqlalchemy import update

from db import db
from models import Stock
from schemas.common import MAX_STOCK
from services import dashboard_service

MAX_PRICE = 9_999_999_999.99

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
PAGES = ("/console/", "/console/products", "/console/products/new", "/console/stock", "/console/stock/low",
         "/console/logs", "/console/statistics")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def db_backend(app) -> str:
    with app.app_context():
        return db.engine.dialect.name


def html(response) -> str:
    assert response.content_type.startswith("text/html"), response.content_type
    return response.get_data(as_text=True)


def csrf_token(client, page: str = "/console/products/new") -> str:
    return TOKEN.search(html(client.get(page))).group(1)


def post_form(client, url: str, data: dict, token: str | None = None):
    return client.post(url, data={"csrf_token": token or csrf_token(client), **data})


def field_errors(page: str) -> dict[str, str]:
    """`{field: message}` as the form shows them under each input."""
    return {field: unescape(text) for field, text in re.findall(r'id="[a-z]+-(\w+)-error">([^<]*)<', page)}


def quantity(client, product_id: int) -> int:
    return client.get(f"/api/stock/product/{product_id}").get_json()["data"]["quantity"]


# ---- `/`: browsers to the console, API clients keep JSON ----

def test_browser_opening_root_is_redirected_to_the_console(client):
    response = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/"
    assert "Accept" in response.headers["Vary"]


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, text/html;q=0.5",
                                    "text/html;q=0.5, application/json"])
def test_api_clients_asking_root_keep_the_json_index(client, accept):
    response = client.get("/", headers={"Accept": accept} if accept else {})
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True and body["data"]["links"]["console"] == "/console/"


def test_every_page_renders_in_chinese_without_external_assets(client, create_product):
    product = create_product(name="测试商品", min_quantity=5, initial_quantity=3)
    for page in (*PAGES, f"/console/products/{product['id']}", f"/console/products/{product['id']}/edit"):
        response = client.get(page)
        assert response.status_code == 200, page
        text = html(response)
        assert '<html lang="zh-CN">' in text
        assert "库存管理" in text
        assert re.findall(r"(?:src|href)=\"(?:https?:)?//", text) == [], page
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_vendored_assets_are_served_by_the_app(client):
    for asset in ("/static/vendor/chartjs/chart.umd.min.js", "/static/vendor/chartjs/LICENSE.md",
                  "/static/console/console.css", "/static/console/charts.js"):
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.get_data()) > 100
    assert b"Chart.js v4.6.1" in client.get("/static/vendor/chartjs/chart.umd.min.js").get_data()


# ---- CSRF ----

@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_post_without_a_valid_token_is_a_400_page_and_changes_nothing(client, create_product, token):
    product = create_product(initial_quantity=5)
    data = {"product_id": product["id"], "quantity": 5}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/console/stock/out", data=data)
    assert response.status_code == 400
    page = html(response)
    assert "CSRF" in page and "Traceback" not in page
    assert quantity(client, product["id"]) == 5
    assert client.post(f"/console/products/{product['id']}/delete", data=data).status_code == 400
    assert client.get(f"/api/products/{product['id']}").status_code == 200


def test_a_token_from_another_session_is_refused(app, client):
    token = csrf_token(app.test_client())
    response = post_form(client, "/console/products/new", {"name": "A", "sku": "A-1", "price": "1"}, token)
    assert response.status_code == 400
    assert client.get("/api/products/").get_json()["data"]["pagination"]["total"] == 0


def test_the_json_api_still_accepts_plain_json_posts(client):
    response = client.post("/api/products/", json={"name": "测试商品", "sku": "NO-CSRF", "price": 1})
    assert response.status_code == 201


# ---- products ----

def test_create_product_from_the_form(client):
    response = post_form(client, "/console/products/new", {
        "name": " 无线鼠标 ", "sku": "MOUSE-001", "price": "59.90", "category": "电子产品",
        "min_quantity": "10", "location": "A区-01", "initial_quantity": "4", "description": "",
    })
    assert response.status_code == 302
    product_id = int(response.headers["Location"].rsplit("/", 1)[1])
    data = client.get(f"/api/products/{product_id}").get_json()["data"]
    assert data["name"] == "无线鼠标" and data["price"] == 59.9 and data["description"] is None
    assert data["stock"] == {"quantity": 4, "reserved": 0, "available": 4, "min_quantity": 10, "max_quantity": None,
                             "location": "A区-01", "is_low": True}
    page = html(client.get(response.headers["Location"]))
    assert "已创建商品「无线鼠标」" in page and "低库存" in page


@pytest.mark.parametrize("form, api_body", [
    ({"name": "", "sku": "X-1", "price": "1"}, {"sku": "X-1", "price": 1}),
    ({"name": "A", "sku": "has space", "price": "1"}, {"name": "A", "sku": "has space", "price": 1}),
    ({"name": "A", "sku": "X-1", "price": "abc"}, {"name": "A", "sku": "X-1", "price": "abc"}),
    ({"name": "A", "sku": "X-1", "price": "1.999"}, {"name": "A", "sku": "X-1", "price": 1.999}),
    ({"name": "A", "sku": "X-1", "price": "-1"}, {"name": "A", "sku": "X-1", "price": -1}),
    ({"name": "A", "sku": "X-1", "price": "1", "min_quantity": "1.5"},
     {"name": "A", "sku": "X-1", "price": 1, "min_quantity": "1.5"}),
    ({"name": "A" * 201, "sku": "X-1", "price": "1"}, {"name": "A" * 201, "sku": "X-1", "price": 1}),
])
def test_form_errors_are_the_api_messages(client, form, api_body):
    response = post_form(client, "/console/products/new", form)
    assert response.status_code == 400
    api = client.post("/api/products/", json=api_body).get_json()["error"]["details"]
    shown = field_errors(html(response))
    assert shown and shown == {field: message for field, message in api.items() if field in shown}
    assert client.get("/api/products/").get_json()["data"]["pagination"]["total"] == 0


def test_thresholds_and_duplicate_sku_are_shown_on_the_form(client, create_product):
    create_product(sku="TAKEN")
    page = html(post_form(client, "/console/products/new", {"name": "A", "sku": "TAKEN", "price": "1"}))
    assert "SKU 已存在" in page and "该 SKU 已被其他商品使用" in page
    response = post_form(client, "/console/products/new",
                         {"name": "A", "sku": "B", "price": "1", "min_quantity": "5", "max_quantity": "2"})
    assert response.status_code == 400
    assert field_errors(html(response)) == {"max_quantity": "不能小于 min_quantity"}


def test_edit_product_and_a_stale_form_is_refused(client, create_product):
    product = create_product(name="旧名称", category="食品")
    url = f"/console/products/{product['id']}/edit"
    form = html(client.get(url))
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    token = TOKEN.search(form).group(1)
    fields = {"name": "新名称", "sku": product["sku"], "price": "12.50", "category": "", "min_quantity": "3",
              "version": version}
    response = post_form(client, url, fields, token)
    assert response.status_code == 302
    data = client.get(f"/api/products/{product['id']}").get_json()["data"]
    assert (data["name"], data["price"], data["category"], data["stock"]["min_quantity"]) == ("新名称", 12.5, None, 3)
    stale = post_form(client, url, {**fields, "name": "覆盖"}, token)
    assert stale.status_code == 412
    assert "已被修改" in html(stale)
    assert client.get(f"/api/products/{product['id']}").get_json()["data"]["name"] == "新名称"


def test_delete_product_keeps_its_history(client, create_product):
    product = create_product(name="待删除", initial_quantity=2)
    response = post_form(client, f"/console/products/{product['id']}/delete", {})
    assert response.status_code == 302
    assert "已删除商品「待删除」" in html(client.get(response.headers["Location"]))
    assert "待删除" in html(client.get("/console/logs"))
    # A movement of it still leads to its page: what it was and its whole history.
    page = client.get(f"/console/products/{product['id']}")
    assert page.status_code == 200
    assert "该商品已于" in html(page) and "初始库存" in html(page) and "SKU-1" in html(page)
    assert "出入库 / 盘点" not in html(page) and "删除</button>" not in html(page)
    assert client.get(f"/console/products/{product['id']}/edit").status_code == 404
    assert client.get("/console/products/987654").status_code == 404


def test_product_list_searches_filters_sorts_and_pages(client, create_product):
    for index in range(25):
        create_product(name=f"商品{index:02d}", category="饮料" if index % 2 else "食品", price=index)
    first = html(client.get("/console/products", query_string={"category": "饮料", "sort": "-price"}))
    assert "共 12 条" in first and first.index("商品23") < first.index("商品21")
    assert "商品22" not in first
    assert "商品07" in html(client.get("/console/products", query_string={"q": "商品07"}))
    paged = html(client.get("/console/products", query_string={"page": 2}))
    assert "第 2 / 2 页" in paged and "商品24" in paged and "商品00" not in paged
    bad = client.get("/console/products", query_string={"sort": "nope", "page": "x"})
    assert bad.status_code == 200 and "筛选条件有误" in html(bad)


# ---- stock operations ----

def test_receive_issue_too_much_and_adjust(client, create_product):
    product = create_product(name="绿茶", min_quantity=10)
    pid = str(product["id"])
    received = post_form(client, "/console/stock/in", {"product_id": pid, "quantity": "50", "reason": "采购入库",
                                                       "operator": "张三"})
    assert received.status_code == 302
    assert "入库成功：「绿茶」库存 0 → 50" in html(client.get(received.headers["Location"]))
    refused = post_form(client, "/console/stock/out", {"product_id": pid, "quantity": "80"})
    assert refused.status_code == 409
    assert "库存不足：当前库存 50，本次需要 80" in html(refused)
    assert quantity(client, product["id"]) == 50
    adjusted = post_form(client, "/console/stock/adjust", {"product_id": pid, "quantity": "8", "reason": "月末盘点"})
    assert "盘点调整成功：「绿茶」库存 50 → 8" in html(client.get(adjusted.headers["Location"]))
    unchanged = post_form(client, "/console/stock/adjust", {"product_id": pid, "quantity": "8"})
    assert "数量未变" in html(client.get(unchanged.headers["Location"]))
    logs = client.get("/api/logs/", query_string={"product_id": pid}).get_json()["data"]["items"]
    assert [(log["action"], log["quantity"], log["operator"]) for log in logs] == [("adjust", -42, None),
                                                                                 ("in", 50, "张三")]


@pytest.mark.parametrize("form, field, message", [
    ({"quantity": "5"}, "product_id", "必填字段"),
    ({"product_id": "1", "quantity": "0"}, "quantity", "不能小于 1"),
    ({"product_id": "1", "quantity": "abc"}, "quantity", "必须是整数"),
    ({"product_id": "1"}, "quantity", "必填字段"),
])
def test_stock_form_errors_are_the_api_messages(client, form, field, message):
    response = post_form(client, "/console/stock/in", form)
    assert response.status_code == 400
    assert field_errors(html(response))[field] == message


def test_an_unknown_product_is_a_clear_message(client):
    response = post_form(client, "/console/stock/in", {"product_id": "987654", "quantity": "1"})
    assert response.status_code == 404
    assert "商品不存在" in html(response)


@pytest.mark.parametrize("product_id, message", [("987654", "商品 987654 不存在"), ("9" * 30, "商品编号无效"),
                                                 ("-3", "商品编号无效")])
def test_choosing_an_unknown_product_on_the_stock_page(client, product_id, message):
    response = client.get("/console/stock", query_string={"product_id": product_id})
    assert response.status_code == 200 and message in html(response)


def test_low_stock_badge_and_list(client, create_product):
    low = create_product(name="打印纸", min_quantity=30, initial_quantity=12)
    create_product(name="保温杯", min_quantity=5, initial_quantity=60)
    page = html(client.get("/console/stock/low"))
    assert "打印纸" in page and "保温杯" not in page and ">18<" in page  # the shortage
    nav_badge = re.search(r'nav-badge"[^>]*>(\d+)<', html(client.get("/console/products")))
    assert nav_badge and nav_badge.group(1) == "1"
    assert "低库存" in html(client.get(f"/console/products/{low['id']}"))


# ---- dashboard, log, statistics ----

def test_dashboard_totals_are_sql_aggregates(app, client, create_product):
    create_product(price=45, initial_quantity=85, min_quantity=10)
    create_product(price=28.5, initial_quantity=12, min_quantity=30)
    gone = create_product(price=1000, initial_quantity=1)
    client.delete(f"/api/products/{gone['id']}")
    with app.test_request_context():
        overview = dashboard_service.overview()
        daily = dashboard_service.daily_movements()
    assert overview == {"product_count": 2, "total_units": 97, "stock_value": Decimal("4167.00"),
                        "low_stock_count": 1}
    assert len(daily) == 30 and daily[-1]["in"] == 98
    page = html(client.get("/console/"))
    assert "¥4,167.00" in page and 'data-testid="total-units">97<' in page


def test_dashboard_stock_value_at_the_documented_limits(app, client, create_product):
    """Prices up to 9,999,999,999.99 and levels up to 10^15: the total passes the 28
    digits of Python's default decimal context and must still be shown."""
    for _ in range(12):
        create_product(price=MAX_PRICE)
    with app.app_context():  # a level only a million adds could reach through the API
        db.session.execute(update(Stock).values(quantity=MAX_STOCK))
        db.session.commit()
    exact = 12 * MAX_STOCK * Decimal(str(MAX_PRICE))
    assert len(str(exact)) > 28
    with app.test_request_context():
        value = dashboard_service.overview()["stock_value"]
    if db_backend(app) == "sqlite":  # no decimal type: the sum is a binary float there
        assert abs(value - exact) <= exact * Decimal("1e-12")
    else:
        assert value == exact
    page = client.get("/console/")
    assert page.status_code == 200
    assert f'data-testid="stock-value">¥{value:,.2f}<' in html(page)


def test_movement_log_filters_and_pages(client, create_product):
    product = create_product(initial_quantity=1)
    for _ in range(22):
        client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1, "operator": "李四"})
    client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 2, "operator": "王五"})
    everything = html(client.get("/console/logs"))
    assert "共 24 条" in everything and "第 1 / 2 页" in everything
    assert "共 1 条" in html(client.get("/console/logs", query_string={"action": "out"}))
    assert "共 22 条" in html(client.get("/console/logs", query_string={"operator": "李四"}))
    assert "共 0 条" in html(client.get("/console/logs", query_string={"end_date": "2000-01-01"}))
    bad = client.get("/console/logs", query_string={"start_date": "yesterday"})
    assert bad.status_code == 200 and "必须是日期或日期时间" in html(bad)


def test_a_bad_filter_is_ignored_and_the_others_still_apply(client, create_product):
    product = create_product(initial_quantity=1)
    client.post("/api/stock/add", json={"product_id": product["id"], "quantity": 1, "operator": "李四"})
    create_product(initial_quantity=5)
    page = html(client.get("/console/logs", query_string={"operator": "李四", "action": "bogus"}))
    assert "共 1 条" in page and "已忽略" in page
    page = html(client.get("/console/logs", query_string={"end_date": "2000-01-01", "product_id": "abc"}))
    assert "共 0 条" in page
    stats = html(client.get("/console/statistics", query_string={"start_date": "2099-01-01", "product_id": "abc"}))
    assert "该范围内没有流水" in stats


def test_statistics_page(client, create_product):
    product = create_product(name="统计商品", initial_quantity=10)
    client.post("/api/stock/reduce", json={"product_id": product["id"], "quantity": 4})
    page = html(client.get("/console/statistics"))
    assert "统计商品" in page and "daily-data" in page
    assert re.search(r"出库总量</span><span[^>]*>4<", page)


# ---- friendly errors, only under /console/ ----

@pytest.mark.parametrize("path", ["/console/nope", "/console/products/987654", "/console/products/987654/edit"])
def test_console_404_is_a_friendly_page(client, path):
    response = client.get(path)
    assert response.status_code == 404
    page = html(response)
    assert "返回概览" in page and "Traceback" not in page


def test_the_api_keeps_json_errors(client):
    for path in ("/api/nope", "/api/products/987654", "/nope"):
        response = client.get(path)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "NOT_FOUND"


def test_console_500_shows_no_trace(app):
    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/console/broken", "console_broken", broken)
    response = app.test_client().get("/console/broken")
    assert response.status_code == 500
    page = html(response)
    assert "服务器出错了" in page and "secret internals" not in page and "Traceback" not in page


def test_console_405_is_a_page(client):
    response = client.post("/console/logs", data={})
    assert response.status_code in (400, 405)  # CSRF is checked first for a POST
    assert "<html" in html(response)
