"""The console's scan box, product barcodes in its forms, and times in the display zone."""
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from db import db
from main import create_app
from tests.conftest import SHARED_DATABASE_URL, empty_tables
from tests.test_console import csrf_token, field_errors, html, post_form
from utils.display_time import format_moment

EAN_13 = "6901234567892"


@pytest.mark.parametrize("code", [EAN_13, "TEA-250", f"  {EAN_13} "])
def test_a_scanned_barcode_or_sku_opens_its_product(client, create_product, code):
    product = create_product(sku="TEA-250", barcode=EAN_13)
    create_product(sku=EAN_13)  # a SKU that looks like the barcode: the barcode wins
    response = client.get("/console/scan", query_string={"code": code})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/console/products/{product['id']}"


@pytest.mark.parametrize("code, location", [("TEA", "/console/products?q=TEA"), ("", "/console/products")])
def test_a_code_that_is_no_products_shows_the_search(client, create_product, code, location):
    create_product(sku="TEA-250")
    response = client.get("/console/scan", query_string={"code": code})
    assert response.status_code == 302 and response.headers["Location"] == location


def test_a_deleted_products_codes_are_not_found_by_a_scan(client, create_product):
    product = create_product(sku="GONE-1", barcode=EAN_13)
    client.delete(f"/api/products/{product['id']}")
    assert client.get("/console/scan", query_string={"code": EAN_13}).headers["Location"].startswith("/console/products?")


def test_every_page_has_the_scan_box(client):
    page = html(client.get("/console/products"))
    assert re.search(r'<form class="scan" method="get" action="/console/scan" role="search">', page)
    assert 'name="code"' in page and "autofocus" in page


def test_the_product_form_takes_a_barcode_and_explains_a_bad_one(client):
    token = csrf_token(client)
    fields = {"name": "扫码商品", "sku": "SCAN-1", "price": "5"}
    refused = post_form(client, "/console/products/new", {**fields, "barcode": "6901234567891"}, token)
    assert refused.status_code == 400
    assert field_errors(html(refused)) == {"barcode": "GTIN 校验位错误：这个 13 位条码的最后一位应为 2"}
    created = post_form(client, "/console/products/new", {**fields, "barcode": EAN_13}, token)
    assert created.status_code == 302
    assert EAN_13 in html(client.get(created.headers["Location"]))
    taken = post_form(client, "/console/products/new", {**fields, "sku": "SCAN-2", "barcode": EAN_13}, token)
    assert field_errors(html(taken)) == {"barcode": "该条码已被其他商品使用"}


def test_the_empty_low_stock_page_needs_no_emoji_font(client):
    page = html(client.get("/console/stock/low"))
    assert "👍" not in page and "<svg" in page and "没有低库存商品" in page


def test_times_are_shown_in_the_display_zone_and_the_api_keeps_utc(db_url):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "DISPLAY_TIMEZONE": "Asia/Shanghai"})
    if SHARED_DATABASE_URL:
        empty_tables(app)
    client = app.test_client()
    created = client.post("/api/products/", json={"name": "时区", "sku": "TZ-1", "price": 1, "initial_quantity": 1})
    data = created.get_json()["data"]
    assert data["created_at"].endswith("Z")  # the API answers UTC
    shanghai = (datetime.fromisoformat(data["created_at"]) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    page = html(client.get(f"/console/products/{data['id']}"))
    assert shanghai in page and "时间为 Asia/Shanghai" in page
    with app.app_context():
        db.engine.dispose()


def test_an_unknown_display_zone_stops_the_start(db_url):
    with pytest.raises(RuntimeError, match="DISPLAY_TIMEZONE"):
        create_app("testing", {"SQLALCHEMY_DATABASE_URI": db_url, "DISPLAY_TIMEZONE": "Mars/Olympus"})


@pytest.mark.parametrize("zone, shown", [(timezone.utc, "2026-11-24 21:30:00"),
                                          (ZoneInfo("Asia/Shanghai"), "2026-11-25 05:30:00"),
                                          (ZoneInfo("America/New_York"), "2026-11-24 16:30:00")])
def test_a_moment_reads_as_the_zones_clock_shows_it(zone, shown):
    """For the console and the human columns of exports; stored times are naive UTC."""
    assert format_moment(datetime(2026, 11, 24, 21, 30, tzinfo=timezone.utc), zone) == shown
    assert format_moment(datetime(2026, 11, 24, 21, 30), zone) == shown
    assert format_moment(None, zone) == "—"
