"""The console's spreadsheet pages in a real browser (headless Chromium under gunicorn):
export the products, edit the file, upload it, read the dry run's table with the bad
cells marked, fix it, apply it; and the export buttons download real files."""
import csv
import io
import re

import pytest
import requests

from tests.test_console_browser import CHROMIUM, TIMEOUT_MS, Visit, browser  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"), pytest.mark.workers(2)]


def test_a_person_exports_edits_previews_and_imports_the_catalogue(browser, live_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    for sku, name, price, quantity in (("TEA-1", "龙井茶", 88, 10), ("CUP-2", "保温杯", 39.9, 4)):
        response = requests.post(f"{live_server.url}/api/products/", timeout=60, json={
            "sku": sku, "name": name, "price": price, "initial_quantity": quantity})
        assert response.status_code == 201, response.text
    visit = Visit(browser, live_server.url, prefix="import-")
    page = visit.page
    try:
        visit.goto("/console/products")
        with page.expect_download() as download_info:
            page.get_by_test_id("export-products").click()
        exported = tmp_path / "products.csv"
        download_info.value.save_as(exported)
        rows = list(csv.reader(io.StringIO(exported.read_bytes().decode("utf-8-sig"))))
        assert [row[0] for row in rows] == ["sku", "TEA-1", "CUP-2"]

        # Edited in a spreadsheet: a new price, a new product, and a typo in a price.
        rows[1][3] = "92.50"
        rows.append(["NEW-3", "新茶杯", "", "12", "茶具", "", "0", "", ""])
        rows.append(["BAD-4", "坏价格", "", "12.345", "", "", "0", "", ""])
        edited = tmp_path / "edited.csv"
        edited.write_text("".join(",".join(row) + "\r\n" for row in rows), encoding="utf-8-sig")

        page.get_by_role("link", name="导入", exact=True).click()
        expect(page.get_by_role("heading", name="导入商品")).to_be_visible()
        page.get_by_label("CSV 或 XLSX 文件").set_input_files(str(edited))
        page.get_by_role("button", name="预演（不做更改）").click()
        expect(page.get_by_test_id("import-errors-total")).to_contain_text("共 1 处错误")
        marked = page.locator("tr[data-row='5'] td[data-error='true']")
        expect(marked).to_have_count(1)
        expect(marked).to_have_text("12.345")
        expect(page.get_by_test_id("import-apply")).to_have_count(0)
        visit.shot("dry-run-errors")

        rows.pop()
        edited.write_text("".join(",".join(row) + "\r\n" for row in rows), encoding="utf-8-sig")
        page.get_by_label("CSV 或 XLSX 文件").set_input_files(str(edited))
        page.get_by_role("button", name="预演（不做更改）").click()
        expect(page.get_by_test_id("import-summary")).to_contain_text("新建 1，更新 1，未变 1")
        expect(page.locator("tr[data-row='2'] td").last).to_have_text("更新")
        visit.shot("dry-run")
        assert len(requests.get(f"{live_server.url}/api/products/", timeout=60).json()["data"]["items"]) == 2

        page.get_by_test_id("import-apply").click()
        expect(page).to_have_url(re.compile(r"/console/products$"))
        expect(page.get_by_text("导入完成：新建 1，更新 1，未变 1")).to_be_visible()
        items = requests.get(f"{live_server.url}/api/products/", timeout=60).json()["data"]["items"]
        assert {item["sku"]: item["price"] for item in items} == {"TEA-1": 92.5, "CUP-2": 39.9, "NEW-3": 12}

        for path, test_id, first_line in (("/console/stock", "export-stock", "sku,name,warehouse,quantity"),
                                          ("/console/logs", "export-logs", "id,created_at,product_id")):
            visit.goto(path)
            with page.expect_download() as download_info:
                page.get_by_test_id(test_id).click()
            saved = tmp_path / f"{test_id}.csv"
            download_info.value.save_as(saved)
            assert saved.read_bytes().decode("utf-8-sig").startswith(first_line)
        assert visit.problems == []
    finally:
        visit.close()
