"""The webhooks page in a real browser: an admin registers a receiver, sees its secret
once, sends a test, and watches deliveries arrive (gunicorn, the worker process and a
real receiver; tests/test_console_browser.py has the browser itself)."""
import json
import time

import pytest
import requests

from tests.conftest import LIVE_SECRET_KEY, SHARED_DATABASE_URL
from tests.test_console_browser import TIMEOUT_MS, Visit, browser, nav, pytestmark  # noqa: F401 - fixture, marks
from tests.webhooks_live import Receiver, Workers


@pytest.fixture
def worker_for(tmp_path, db_url):
    """A worker on the live server's database with its settings (its SECRET_KEY opens the secrets)."""
    workers = Workers(tmp_path, {"APP_ENV": "production", "DATABASE_URL": db_url, "SECRET_KEY": LIVE_SECRET_KEY,
                                 "AUTH_REQUIRED": "false", "WEBHOOK_POLL_INTERVAL": "0.2",
                                 "SCHEMA_SETUP": "create_all" if db_url == SHARED_DATABASE_URL else "migrate"})
    yield workers
    workers.stop()


def test_an_admin_registers_a_webhook_and_watches_its_deliveries(browser, live_server, worker_for):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    receiver = Receiver()
    visit = Visit(browser, live_server.url, prefix="webhooks-")
    page = visit.page
    try:
        visit.goto("/console/")
        nav(page, "Webhook").click()
        expect(page.locator("#webhooks")).to_contain_text("还没有 Webhook")
        page.get_by_label("接收地址 URL").fill("ftp://nowhere")
        page.get_by_role("button", name="创建").click()
        expect(page.locator("#f-url-error")).to_contain_text("http")
        page.get_by_label("接收地址 URL").fill(receiver.url + "/inventory")
        page.get_by_label("说明").fill("仓库大屏")
        page.get_by_label("stock.changed").check()
        page.get_by_role("button", name="创建").click()
        secret = page.locator("#new-secret code").inner_text()
        assert secret.startswith("whsec_")
        visit.shot("created")

        product = requests.post(f"{live_server.url}/api/products/", timeout=60, json={
            "name": "推送测试商品", "sku": "HOOK-1", "price": 9.9, "initial_quantity": 7}).json()["data"]
        page.get_by_role("link", name=receiver.url + "/inventory").click()
        page.get_by_role("button", name="发送测试事件").click()
        expect(page.get_by_role("status")).to_contain_text("测试事件 ping 已排队")
        worker_for.start()
        webhook_id = page.url.rstrip("/").rsplit("/", 1)[-1]
        deliveries = f"{live_server.url}/api/webhooks/{webhook_id}/deliveries?status=delivered"
        deadline = time.monotonic() + 60
        while len(requests.get(deliveries, timeout=60).json()["data"]["items"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        kinds = sorted(json.loads(r.body)["type"] for r in receiver.delivered())
        assert kinds == ["ping", "stock.changed"]
        page.reload()
        expect(page.locator("#deliveries .delivery-delivered")).to_have_count(2)
        expect(page.locator("#deliveries")).to_contain_text(f"#{product['id']}")
        page.get_by_label("投递状态").select_option("failed")
        page.get_by_role("button", name="筛选").click()
        expect(page.locator("#deliveries")).to_contain_text("没有投递记录")
        page.get_by_label("投递状态").select_option("")
        page.get_by_role("button", name="筛选").click()
        visit.shot("deliveries")
        assert "secret" not in page.content() and secret not in page.content()
        assert visit.problems == []
    finally:
        visit.close()
        receiver.close()
