"""The web console in a real browser: headless Chromium (Debian's package) driven by
Playwright against the app under gunicorn, used the way a person would use it.

Screenshots of every page land in `artifacts/screenshots/` (git-ignored).
Skipped only when /usr/bin/chromium is missing outside CI; in CI (CI=true) it must run."""
import os
import re
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = PROJECT_DIR / "artifacts" / "screenshots"
# Generous: a loaded 2-core machine may be slow to start a browser or serve a page.
TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("CI") != "true",
                       reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium fonts-noto-cjk)"),
    pytest.mark.workers(2),
]

SEED = [  # name, sku, price, category, min, initial, location
    ("有机绿茶 250g", "TEA-250", 45.00, "食品", 20, 120, "B区-03"),
    ("A4 打印纸（500张）", "PAPER-A4", 28.50, "办公用品", 30, 12, "C区-01"),
    ("不锈钢保温杯", "CUP-500", 39.90, "日用品", 5, 60, "A区-07"),
]


@pytest.fixture(scope="module")
def browser():
    # Imported here so that a missing package fails the test instead of skipping it.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True, timeout=120_000)
        yield browser
        browser.close()


class Visit:
    """A browser tab on the live server that records script errors and takes screenshots."""

    def __init__(self, browser, base_url: str, width: int = 1280, height: int = 800, prefix: str = ""):
        self.base_url = base_url
        self.prefix = prefix
        self.context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                           base_url=base_url)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.set_default_navigation_timeout(TIMEOUT_MS * 2)
        self.problems: list[str] = []
        self.page.on("pageerror", lambda exc: self.problems.append(f"script error: {exc}"))
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        # A 4xx page (a refused form, a 404) is logged as a failed load; that is expected.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(message.text)

    def goto(self, path: str):
        response = self.page.goto(path, wait_until="load")
        return response

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.prefix}{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


def seed(base_url: str) -> None:
    """Other products, created through the JSON API as another client would."""
    for name, sku, price, category, minimum, initial, location in SEED:
        response = requests.post(f"{base_url}/api/products/", timeout=60, json={
            "name": name, "sku": sku, "price": price, "category": category, "min_quantity": minimum,
            "initial_quantity": initial, "location": location})
        assert response.status_code == 201, response.text
    tea = requests.get(f"{base_url}/api/products/", params={"q": "TEA-250"}, timeout=60).json()["data"]["items"][0]
    response = requests.post(f"{base_url}/api/stock/reduce", timeout=60,
                             json={"product_id": tea["id"], "quantity": 35, "reason": "销售出库", "operator": "李四"})
    assert response.status_code == 200, response.text


def nav(page, name: str):
    """A link of the main navigation."""
    return page.locator("nav.nav").get_by_role("link", name=name, exact=True)


def chart_drawn(page, canvas_id: str) -> bool:
    return page.evaluate(f"() => !!(window.Chart && Chart.getChart(document.getElementById('{canvas_id}')))")


def test_a_person_manages_stock_in_the_console(browser, live_server):
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    seed(live_server.url)
    visit = Visit(browser, live_server.url)
    page = visit.page
    try:
        # A browser opening the service is sent to the console.
        visit.goto("/")
        expect(page).to_have_url(re.compile(r"/console/$"))
        expect(page.get_by_role("heading", name="概览")).to_be_visible()

        # Create a product; a first try with mistakes shows the API's messages.
        nav(page, "商品").click()
        page.get_by_role("link", name="＋ 新建商品").click()
        page.get_by_label("SKU").fill("MOUSE-001")
        page.get_by_label("价格（元）").fill("abc")
        page.get_by_role("button", name="创建商品").click()
        expect(page.locator("#f-name-error")).to_have_text("必填字段")
        expect(page.locator("#f-price-error")).to_have_text("必须是数字")
        visit.shot("product-form-errors")
        page.get_by_label("名称").fill("无线鼠标")
        page.get_by_label("价格（元）").fill("59.90")
        page.get_by_label("分类").fill("电子产品")
        page.get_by_label("最低库存").fill("10")
        page.get_by_label("库位").fill("A区-01")
        page.get_by_role("button", name="创建商品").click()
        expect(page.get_by_role("status")).to_contain_text("已创建商品「无线鼠标」")
        expect(page.get_by_test_id("quantity")).to_contain_text("0")

        # Receive stock.
        page.get_by_role("link", name="出入库 / 盘点").click()
        expect(page.get_by_test_id("chosen")).to_contain_text("无线鼠标")
        receive = page.locator("#op-in")
        receive.get_by_label("数量").fill("50")
        receive.get_by_label("原因").fill("采购入库")
        receive.get_by_label("操作人").fill("张三")
        receive.get_by_role("button", name="入库").click()
        expect(page.get_by_role("status")).to_contain_text("入库成功：「无线鼠标」库存 0 → 50")
        expect(page.get_by_test_id("current-quantity")).to_have_text("50")

        # Try to issue more than there is, and read why it was refused.
        issue = page.locator("#op-out")
        issue.get_by_label("数量").fill("80")
        issue.get_by_label("操作人").fill("张三")
        issue.get_by_role("button", name="出库").click()
        expect(page.get_by_test_id("op-error")).to_have_text("库存不足：当前库存 50，本次需要 80")
        expect(page.get_by_test_id("current-quantity")).to_have_text("50")
        visit.shot("stock-insufficient")

        # Stocktake: 8 counted, now below the minimum of 10.
        count = page.locator("#op-adjust")
        count.get_by_label("实盘数量").fill("8")
        count.get_by_label("原因").fill("月末盘点")
        count.get_by_label("操作人").fill("王五")
        count.get_by_role("button", name="盘点调整").click()
        expect(page.get_by_role("status")).to_contain_text("库存 50 → 8")
        expect(page.get_by_test_id("chosen").locator(".badge-warn")).to_have_text("低库存")
        visit.shot("stock")

        # The dashboard shows it: 4 products, 165 units, their value, 2 low.
        nav(page, "概览").click()
        expect(page.get_by_test_id("product-count")).to_have_text("4")
        expect(page.get_by_test_id("total-units")).to_have_text("165")
        expect(page.get_by_test_id("stock-value")).to_have_text("¥7,040.20")
        expect(page.get_by_test_id("low-count")).to_have_text("2")
        expect(page.locator("table")).to_contain_text("月末盘点")
        assert chart_drawn(page, "daily-chart")
        visit.shot("dashboard")

        # The movement log, filtered as the API filters.
        nav(page, "流水").click()
        expect(page.locator("tbody tr")).to_have_count(6)
        page.get_by_label("动作").select_option("adjust")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody")).to_contain_text("无线鼠标")
        expect(page.locator("tbody")).to_contain_text("−42")
        page.get_by_role("link", name="清除").click()
        page.get_by_label("操作人").fill("张三")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody")).to_contain_text("采购入库")
        page.get_by_role("link", name="清除").click()
        visit.shot("logs")

        # The low-stock badge and list.
        expect(page.locator(".nav-badge")).to_have_text("2")
        page.locator("nav.nav").get_by_role("link", name=re.compile("^低库存")).click()
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("A4 打印纸")  # shortage 18 before 2
        expect(rows.nth(1)).to_contain_text("无线鼠标")
        visit.shot("low-stock")

        # The product page: its history and the chart of its quantity, over time (one
        # more movement, after a longer pause than the others, to space them unevenly).
        link = rows.nth(1).get_by_role("link", name="无线鼠标")
        mouse = int(re.search(r"/products/(\d+)$", link.get_attribute("href")).group(1))
        time.sleep(2)
        requests.post(f"{live_server.url}/api/stock/reduce", json={"product_id": mouse, "quantity": 1}, timeout=60)
        link.click()
        expect(page.get_by_test_id("quantity")).to_contain_text("7")
        expect(page.locator("tbody tr")).to_have_count(3)
        assert chart_drawn(page, "history-chart")
        assert_points_spaced_by_time(page, "history-chart")
        visit.shot("product")

        # A scanner types a code into the search box and presses Enter.
        scan = page.get_by_role("searchbox", name="扫码或搜索商品")
        scan.fill("CUP-500")
        scan.press("Enter")
        expect(page.get_by_role("heading", name=re.compile("不锈钢保温杯"))).to_be_visible()
        scan = page.get_by_role("searchbox", name="扫码或搜索商品")
        scan.fill("保温")
        scan.press("Enter")
        expect(page.locator("tbody tr")).to_have_count(1)

        # Products: search and category filter.
        nav(page, "商品").click()
        expect(page.locator("tbody tr")).to_have_count(4)
        visit.shot("products")
        page.get_by_label("分类").select_option(label="食品（1）")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator("tbody tr")).to_have_count(1)
        expect(page.locator("tbody")).to_contain_text("有机绿茶")

        # Statistics.
        nav(page, "统计").click()
        expect(page.locator(".stats")).to_contain_text("242")  # 120 + 12 + 60 + 50 received
        assert chart_drawn(page, "daily-chart")
        visit.shot("statistics")

        # Delete a product after confirming; its history stays in the log.
        nav(page, "商品").click()
        page.get_by_role("link", name="不锈钢保温杯").click()
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="删除").click()
        expect(page.get_by_role("status")).to_contain_text("已删除商品「不锈钢保温杯」")
        expect(page.locator("tbody tr")).to_have_count(3)
        nav(page, "流水").click()
        expect(page.locator("tbody")).to_contain_text("不锈钢保温杯")
        # Its movement still leads to it: what it was and its history, not a 404.
        page.locator("tbody").get_by_role("link", name="不锈钢保温杯").first.click()
        expect(page.get_by_test_id("deleted")).to_contain_text("该商品已于")
        expect(page.locator("tbody")).to_contain_text("初始库存")
        visit.shot("deleted-product")

        # A page that does not exist is a friendly page, not a trace.
        response = visit.goto("/console/products/987654")
        assert response.status == 404
        expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()
        expect(page.locator("body")).not_to_contain_text("Traceback")
        visit.shot("not-found")

        assert visit.problems == []
    finally:
        visit.close()


def assert_points_spaced_by_time(page, canvas_id: str) -> None:
    """The chart's x axis is time: the gaps between points on screen are in proportion to
    the time between the movements, and no two axis labels read the same."""
    chart = page.evaluate(f"""() => {{
        const chart = Chart.getChart(document.getElementById('{canvas_id}'));
        return {{type: chart.scales.x.type, times: chart.data.datasets[0].data.map(p => p.x),
                 pixels: chart.getDatasetMeta(0).data.map(p => p.x),
                 labels: chart.scales.x.ticks.map(t => t.label).filter(l => l)}};
    }}""")
    assert chart["type"] == "linear"
    times, pixels = chart["times"], chart["pixels"]
    assert len(times) >= 3 and times == sorted(times)
    scale = (pixels[-1] - pixels[0]) / (times[-1] - times[0])
    for moment, pixel in zip(times, pixels):
        assert abs(pixels[0] + (moment - times[0]) * scale - pixel) < 1.5
    assert len(chart["labels"]) == len(set(chart["labels"])) >= 1


def test_the_console_fits_a_phone(browser, live_server):
    from playwright.sync_api import expect

    visit = Visit(browser, live_server.url, width=390, height=844, prefix="phone-")
    page = visit.page
    try:
        # Nothing low yet: the page says so with a drawing, no emoji font needed.
        visit.goto("/console/stock/low")
        icon = page.get_by_test_id("no-low-stock").locator("svg")
        expect(icon).to_be_visible()
        assert icon.bounding_box()["width"] >= 12
        seed(live_server.url)
        for path, name in (("/console/", "dashboard"), ("/console/stock?product_id=1", "stock"),
                           ("/console/products", "products")):
            response = visit.goto(path)
            assert response.status == 200
            expect(page.locator("main")).to_be_visible(timeout=TIMEOUT_MS)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is wider than the phone by {overflow}px"
            visit.shot(name)
        # The product list keeps each price and stock level on screen, no sideways scroll.
        rows = page.locator("tbody tr")
        expect(rows).to_have_count(len(SEED))
        for index in range(len(SEED)):
            for cell in ("price", "stock"):
                box = rows.nth(index).get_by_test_id(cell).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (index, cell, box)
        assert visit.problems == []
    finally:
        visit.close()


def test_the_api_docs_run_under_their_page_policy(browser, live_server):
    """Swagger UI starts from an inline script that the page policy allows by the hash
    taken at start-up; a policy that missed it would leave the page blank."""
    from playwright.sync_api import expect

    visit = Visit(browser, live_server.url)
    try:
        visit.goto("/docs/")
        expect(visit.page.locator(".swagger-ui .info .title")).to_contain_text("Inventory service API",
                                                                           timeout=TIMEOUT_MS)
        expect(visit.page.locator(".swagger-ui .info .description")).to_contain_text("库存管理服务")
        expect(visit.page.locator(".opblock").first).to_be_visible()
        assert visit.problems == []
    finally:
        visit.close()


def test_a_person_keeps_stock_in_two_warehouses(browser, live_server):
    """Create a warehouse, receive into it, transfer (调拨) back, read the levels on the
    product page and the warehouse on each movement row, and move the default mark."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    created = requests.post(f"{live_server.url}/api/products/", timeout=60, json={
        "name": "蓝牙耳机", "sku": "EAR-01", "price": 199, "initial_quantity": 30})
    assert created.status_code == 201, created.text
    product_id = created.json()["data"]["id"]
    visit = Visit(browser, live_server.url, prefix="warehouses-")
    page = visit.page
    try:
        visit.goto("/console/")
        nav(page, "仓库").click()
        expect(page.get_by_test_id("warehouses")).to_contain_text("默认仓库")
        page.get_by_role("button", name="创建仓库").click()
        expect(page.locator("#new-code-error")).to_have_text("必填字段")
        page.get_by_label("编码").fill("SH-01")
        page.get_by_label("名称").fill("上海一号仓")
        page.get_by_label("地址").fill("上海市浦东新区")
        page.get_by_role("button", name="创建仓库").click()
        expect(page.get_by_role("status")).to_contain_text("已创建仓库「上海一号仓」")
        visit.shot("list")

        visit.goto(f"/console/stock?product_id={product_id}")
        receive = page.locator("#op-in")
        receive.get_by_label("数量").fill("12")
        receive.get_by_label("仓库").select_option(label="SH-01 · 上海一号仓")
        receive.get_by_role("button", name="入库").click()
        expect(page.get_by_role("status")).to_contain_text("库存 30 → 42")
        expect(page.get_by_test_id("chosen-levels")).to_contain_text("SH-01 12")

        transfer = page.locator("#op-transfer")
        transfer.get_by_label("调出仓库").select_option(label="SH-01 · 上海一号仓")
        transfer.get_by_label("调入仓库").select_option(label="DEFAULT · 默认仓库（默认）")
        transfer.get_by_label("数量").fill("20")
        transfer.get_by_role("button", name="调拨").click()
        expect(page.get_by_test_id("op-error")).to_contain_text("库存不足：当前库存 12，本次需要 20")
        transfer.get_by_label("调出仓库").select_option(label="SH-01 · 上海一号仓")
        transfer.get_by_label("调入仓库").select_option(label="DEFAULT · 默认仓库（默认）")
        transfer.get_by_label("数量").fill("5")
        transfer.get_by_label("原因").fill("门店补货")
        transfer.get_by_role("button", name="调拨").click()
        expect(page.get_by_role("status")).to_contain_text("调拨成功：5 件从 SH-01（余 7）到 DEFAULT（现 35）")
        expect(page.get_by_test_id("current-quantity")).to_have_text("42")
        visit.shot("stock")

        visit.goto(f"/console/products/{product_id}")
        levels = page.get_by_test_id("levels")
        expect(levels.locator("tbody tr")).to_have_count(2)
        expect(levels).to_contain_text("SH-01")
        rows = page.locator("table:not([data-testid]) tbody tr")
        expect(rows.first).to_contain_text("调入")
        expect(rows.first.get_by_test_id("log-warehouse")).to_contain_text("DEFAULT")
        expect(rows.nth(1)).to_contain_text("调出")
        expect(rows.nth(1).get_by_test_id("log-warehouse")).to_contain_text("SH-01 仓内 12 → 7")
        visit.shot("product")

        nav(page, "仓库").click()
        page.get_by_role("link", name="SH-01").click()
        expect(page.get_by_test_id("warehouse-stock")).to_contain_text("蓝牙耳机")
        page.goto(f"{live_server.url}/console/warehouses")
        page.get_by_role("button", name="设为默认").click()
        expect(page.get_by_role("status")).to_contain_text("「上海一号仓」已设为默认仓库")
        assert visit.problems == []
    finally:
        visit.close()


def test_a_person_fulfils_and_releases_reservations(browser, live_server):
    """Reservations made through the API show on the product page (reserved, available,
    the holds and until when); the reservations page filters them and fulfils or
    releases each one."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    created = requests.post(f"{live_server.url}/api/products/", timeout=60, json={
        "name": "机械键盘", "sku": "KEY-01", "price": 299, "initial_quantity": 10})
    assert created.status_code == 201, created.text
    product_id = created.json()["data"]["id"]
    held = [requests.post(f"{live_server.url}/api/reservations/", timeout=60, json={
        "product_id": product_id, "quantity": quantity, "reference": reference}).json()["data"]["id"]
        for quantity, reference in ((3, "订单-1001"), (2, "订单-1002"))]
    visit = Visit(browser, live_server.url, prefix="reservations-")
    page = visit.page
    try:
        visit.goto(f"/console/products/{product_id}")
        expect(page.get_by_test_id("reserved")).to_have_text("5")
        expect(page.get_by_test_id("available")).to_have_text("5")
        expect(page.get_by_test_id("reservations").locator("tbody tr")).to_have_count(2)
        visit.shot("product")
        visit.goto("/console/products")
        expect(page.get_by_test_id("held-note")).to_have_text("已预留 5 · 可用 5")

        nav(page, "预留").click()
        page.get_by_label("订单号").fill("订单-1001")
        page.get_by_role("button", name="筛选").click()
        rows = page.get_by_test_id("reservations").locator("tbody tr")
        expect(rows).to_have_count(1)
        page.get_by_test_id(f"reservation-{held[0]}").get_by_test_id("fulfil").click()
        expect(page.get_by_role("status")).to_contain_text(f"预留 {held[0]} 已出库 3 件")
        expect(page.get_by_test_id(f"reservation-{held[0]}").get_by_test_id("status")).to_have_text("已出库")

        visit.goto("/console/reservations?status=active")
        page.get_by_test_id(f"reservation-{held[1]}").get_by_test_id("release").click()
        expect(page.get_by_role("status")).to_contain_text(f"预留 {held[1]} 已释放")
        expect(page.get_by_test_id("reservations")).to_contain_text("没有预留")
        visit.shot("list")

        visit.goto(f"/console/products/{product_id}")
        expect(page.get_by_test_id("quantity")).to_contain_text("7")
        expect(page.get_by_test_id("reserved")).to_have_text("0")
        assert visit.problems == []
    finally:
        visit.close()
