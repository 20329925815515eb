"""Spreadsheets in and out (SPEC §11): all-or-nothing imports that name every bad row and
column, dry runs with the same checks, counts as compare-and-set stocktakes through the
ledger, the encodings Excel writes, and exports that import back unchanged."""
import csv
import io
import time
import zipfile

import pytest
from openpyxl import Workbook, load_workbook

from services import stock_service
from tests.helpers import assert_error, ok
from tests.test_access_control import bearer, issue_keys, make_app

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = b"\xef\xbb\xbf"


def send(client, body: bytes, dry_run: bool = False, content_type: str = "text/csv", **headers):
    return client.post(f"/api/import/products?dry_run={str(dry_run).lower()}", data=body,
                       content_type=content_type, headers=headers)


def upload(client, body: bytes, filename: str = "products.csv", dry_run: bool = False):
    return client.post(f"/api/import/products?dry_run={str(dry_run).lower()}",
                       data={"file": (io.BytesIO(body), filename)}, content_type="multipart/form-data")


def csv_bytes(rows: list[list], encoding: str = "utf-8", bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return (BOM if bom else b"") + buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(BOM)
    return list(csv.reader(io.StringIO(body[len(BOM):].decode("utf-8"))))


def products_by_sku(client) -> dict[str, dict]:
    items = ok(client.get("/api/products/?per_page=100"))["items"]
    return {item["sku"]: item for item in items}


def log_total(client) -> int:
    return ok(client.get("/api/logs/"))["pagination"]["total"]


@pytest.fixture
def catalogue(create_product):
    """Products with Chinese text, prices of every shape and empty optional fields."""
    return [
        create_product(sku="茶-001", name="西湖龙井 250g", price=88.1, category="茶叶", description="明前，\"特级\"，含逗号,",
                       barcode="6901234567892", min_quantity=5, max_quantity=50, location="A区-01", initial_quantity=12),
        create_product(sku="B-2", name="矿泉水", price=0, initial_quantity=0),
        create_product(sku="C-3", name="多行\n描述的商品", price=1234567.5, description="第一行\n第二行"),
    ]


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_an_exported_catalogue_imports_back_with_every_row_unchanged(client, catalogue, file_format):
    before = products_by_sku(client)
    exported = client.get(f"/api/export/products?format={file_format}")
    assert exported.status_code == 200 and exported.is_streamed
    assert "attachment" in exported.headers["Content-Disposition"]
    logs = log_total(client)
    content_type = XLSX if file_format == "xlsx" else "text/csv"
    data = ok(send(client, exported.data, content_type=content_type))
    assert data == {"rows": 3, "created": 0, "updated": 0, "unchanged": 3, "stock_adjusted": 0, "errors": [],
                    "dry_run": False}
    assert products_by_sku(client) == before  # updated_at and ETag versions untouched too
    assert log_total(client) == logs


def test_the_csv_export_is_utf8_with_bom_and_holds_the_text_as_stored(client, catalogue):
    rows = read_csv(client.get("/api/export/products").data)
    assert rows[0] == ["sku", "name", "barcode", "price", "category", "description", "min_quantity",
                       "max_quantity", "location"]
    assert rows[1] == ["茶-001", "西湖龙井 250g", "6901234567892", "88.10", "茶叶", "明前，\"特级\"，含逗号,", "5", "50",
                       "A区-01"]
    assert rows[2] == ["B-2", "矿泉水", "", "0.00", "", "", "0", "", ""]
    assert rows[3][1:2] == ["多行\n描述的商品"]


def test_importing_the_same_file_twice_changes_nothing_the_second_time(client):
    body = csv_bytes([["sku", "名称", "价格", "分类", "数量"], ["N-1", "新品", "9.9", "零食", "7"],
                      ["N-2", "另一个", "1", "", ""]])
    first = ok(send(client, body))
    assert (first["created"], first["stock_adjusted"]) == (2, 1)
    logs, state = log_total(client), products_by_sku(client)
    second = ok(send(client, body))
    assert (second["unchanged"], second["created"], second["updated"], second["stock_adjusted"]) == (2, 0, 0, 0)
    assert log_total(client) == logs and products_by_sku(client) == state


def test_changed_rows_are_updated_and_only_they(client, catalogue):
    rows = read_csv(client.get("/api/export/products").data)
    rows[2][3] = "2.50"  # B-2's price
    rows[3][4] = "杂货"  # C-3's category
    before = products_by_sku(client)
    data = ok(send(client, csv_bytes(rows)))
    assert (data["updated"], data["unchanged"]) == (2, 1)
    after = products_by_sku(client)
    assert after["B-2"]["price"] == 2.5 and after["C-3"]["category"] == "杂货"
    assert after["茶-001"] == before["茶-001"]
    categories = {c["category"]: c["product_count"] for c in ok(client.get("/api/products/categories"))}
    assert categories == {"茶叶": 1, "杂货": 1}


BAD_FILE = [
    ["sku", "name", "price", "min_quantity", "max_quantity", "quantity", "warehouse", "颜色"],
    ["OK-1", "好的", "1", "", "", "5", "", ""],
    ["BAD-2", "价格不对", "1.234", "", "", "", "", ""],
    ["", "没有编码", "1", "", "", "", "", ""],
    ["BAD-4", "", "abc", "", "", "-1", "", ""],
    ["BAD-5", "阈值", "1", "9", "3", "", "上海仓", ""],
    ["OK-1", "重复", "1", "", "", "", "", ""],
    ["BAD-7", "新品缺价格", "", "", "", "", "", ""],
]
BAD_FILE_ERRORS = {(1, "颜色"), (3, "price"), (4, "sku"), (5, "name"), (5, "price"), (5, "quantity"), (6, "max_quantity"),
                   (6, "warehouse"), (7, "sku"), (8, "price")}


@pytest.mark.parametrize("dry_run", [False, True], ids=["import", "dry run"])
def test_one_bad_row_changes_nothing_and_every_bad_row_and_column_is_named(client, create_product, dry_run):
    create_product(sku="OLD", initial_quantity=3)
    logs, state = log_total(client), products_by_sku(client)
    details = assert_error(send(client, csv_bytes(BAD_FILE), dry_run=dry_run), 400, "VALIDATION_ERROR")
    assert {(e["row"], e["column"]) for e in details["errors"]} == BAD_FILE_ERRORS
    assert details["errors_total"] == len(details["errors"]) and details["rows"] == 7
    assert all(e["message"] for e in details["errors"])
    assert products_by_sku(client) == state and log_total(client) == logs


def test_a_count_is_a_compare_and_set_so_an_old_stocktake_cannot_erase_later_sales(client, catalogue):
    sheet = read_csv(client.get("/api/export/stock").data)
    assert sheet[0] == ["sku", "name", "warehouse", "quantity", "expected_quantity", "reserved", "available",
                        "min_quantity", "max_quantity", "location"]
    assert sheet[1][:5] == ["茶-001", "西湖龙井 250g", "DEFAULT", "12", "12"]
    ok(client.post("/api/stock/reduce", json={"product_id": catalogue[0]["id"], "quantity": 2}))  # sold after the export
    sheet[1][3], sheet[2][3] = "11", "4"  # counted: 11 of the tea, 4 bottles of water
    for dry_run in (True, False):
        details = assert_error(send(client, csv_bytes(sheet), dry_run=dry_run), 400, "VALIDATION_ERROR")
        assert [(e["row"], e["column"]) for e in details["errors"]] == [(2, "expected_quantity")]
        assert "10" in details["errors"][0]["message"]
    assert ok(client.get(f"/api/stock/product/{catalogue[1]['id']}"))["quantity"] == 0  # the good row waited too
    fresh = read_csv(client.get("/api/export/stock").data)
    fresh[1][3], fresh[2][3] = "11", "4"
    data = ok(send(client, csv_bytes(fresh)))
    assert (data["updated"], data["unchanged"], data["stock_adjusted"]) == (2, 1, 2)


def test_a_product_in_two_warehouses_exports_a_row_per_level_and_counts_each_level(client, catalogue):
    tea = catalogue[0]["id"]
    default = next(w["id"] for w in ok(client.get("/api/warehouses/"))["items"] if w["is_default"])
    shanghai = ok(client.post("/api/warehouses/", json={"code": "SH", "name": "上海仓"}), 201)["id"]
    ok(client.post("/api/stock/transfer", json={"product_id": tea, "from_warehouse_id": default,
                                                "to_warehouse_id": shanghai, "quantity": 5}))
    ok(client.post("/api/reservations/", json={"product_id": tea, "warehouse_id": shanghai, "quantity": 1}), 201)
    moved = read_csv(client.get(f"/api/export/logs?product_id={tea}&action=transfer_in").data)
    row = dict(zip(moved[0], moved[1]))
    assert (row["warehouse_code"], row["level_before"], row["level_after"], len(row["transfer_id"])) == ("SH", "0", "5", 32)
    sheet = read_csv(client.get("/api/export/stock").data)
    assert [row[:7] for row in sheet[1:3]] == [["茶-001", "西湖龙井 250g", "DEFAULT", "7", "7", "0", "7"],
                                                ["茶-001", "西湖龙井 250g", "SH", "5", "5", "1", "4"]]
    assert read_csv(client.get(f"/api/export/stock?warehouse_id={shanghai}").data)[1:] == [sheet[2]]
    assert ok(send(client, csv_bytes(sheet)))["unchanged"] == len(sheet) - 1
    sheet[2][3] = "3"  # counted in Shanghai: 3
    data = ok(send(client, csv_bytes(sheet)))
    assert (data["updated"], data["stock_adjusted"]) == (1, 1)
    stock = ok(client.get(f"/api/stock/product/{tea}"))
    assert stock["quantity"] == 10
    assert {level["warehouse_code"]: level["quantity"] for level in stock["levels"]} == {"DEFAULT": 7, "SH": 3}
    log = ok(client.get(f"/api/logs/?product_id={tea}&per_page=1"))["items"][0]
    assert (log["action"], log["warehouse_id"], log["level_before"], log["level_after"]) == ("adjust", shanghai, 5, 3)
    sheet[2][2], sheet[3][2] = "SH", "SH"  # a second row of one SKU in one warehouse, and an unknown code
    sheet[1][2] = "北京仓"
    details = assert_error(send(client, csv_bytes(sheet)), 400, "VALIDATION_ERROR")
    assert {(e["row"], e["column"]) for e in details["errors"]} >= {(2, "warehouse")}


def test_counts_are_adjust_movements_on_the_ledger_by_the_caller(db_url):
    app = make_app(db_url, AUTH_REQUIRED=True)
    keys = issue_keys(app)
    client = app.test_client()
    body = csv_bytes([["sku", "name", "price", "quantity"], ["L-1", "账本", "1", "8"]])
    assert_error(send(client, body, **bearer(keys["operator"])), 403, "FORBIDDEN")  # it creates products
    ok(send(client, body, **bearer(keys["admin"])))
    again = csv_bytes([["sku", "quantity", "expected_quantity"], ["L-1", "5", "8"]])
    ok(send(client, again, **bearer(keys["admin"])))
    logs = ok(client.get("/api/logs/", headers=bearer(keys["viewer"])))["items"]
    assert [(log["action"], log["quantity"], log["before_quantity"], log["after_quantity"], log["seq"], log["operator"])
            for log in reversed(logs)] == [("adjust", 8, 0, 8, 1, "admin-key"), ("adjust", -3, 8, 5, 2, "admin-key")]
    assert logs[0]["prev_hash"] == logs[1]["hash"]
    assert ok(client.get("/api/logs/verify", headers=bearer(keys["viewer"])))["problems"] == []
    exported = client.get("/api/export/logs", headers=bearer(keys["viewer"]))
    assert exported.status_code == 200 and len(read_csv(exported.data)) == 3


def test_counts_in_rounds_chain_each_product_and_announce_each_movement(client, create_product, monkeypatch):
    monkeypatch.setattr(stock_service, "COUNT_CHUNK", 2)  # counts are written a few products at a time
    tea = create_product(sku="C-1", initial_quantity=6)
    rice = create_product(sku="C-2", initial_quantity=5, min_quantity=2)
    ok(client.post("/api/warehouses/", json={"code": "SH", "name": "上海仓"}), 201)
    before = len(ok(client.get("/api/events/?after=0&limit=500"))["items"])
    body = csv_bytes([["sku", "name", "price", "warehouse", "quantity"],
                      ["C-1", "测试商品", "19.99", "DEFAULT", "4"], ["C-1", "测试商品", "19.99", "SH", "2"],
                      ["C-2", "测试商品", "19.99", "DEFAULT", "1"], ["C-3", "新品", "3", "", "9"]])
    assert ok(send(client, body))["stock_adjusted"] == 4
    logs = list(reversed(ok(client.get("/api/logs/?per_page=100"))["items"]))[-4:]
    assert [(log["sku"], log["seq"], log["quantity"], log["before_quantity"], log["after_quantity"],
             log["warehouse_code"], log["level_before"], log["level_after"], log["reason"]) for log in logs] == [
        ("C-1", 2, -2, 6, 4, "DEFAULT", 6, 4, "导入盘点"), ("C-1", 3, 2, 4, 6, "SH", 0, 2, "导入盘点"),
        ("C-2", 2, -4, 5, 1, "DEFAULT", 5, 1, "导入盘点"), ("C-3", 1, 9, 0, 9, "DEFAULT", 0, 9, "导入盘点")]
    assert [log["prev_hash"] for log in logs[1:2]] == [logs[0]["hash"]]
    stocks = {s["product_id"]: s for s in (ok(client.get(f"/api/stock/product/{p['id']}")) for p in (tea, rice))}
    assert (stocks[tea["id"]]["quantity"], stocks[rice["id"]]["quantity"], stocks[rice["id"]]["is_low"]) == (6, 1, True)
    events = ok(client.get("/api/events/?after=0&limit=500"))["items"][before:]
    assert [e["data"] for e in events if e["type"] == "stock.changed"] == logs
    assert [e["data"]["sku"] for e in events if e["type"] == "stock.low"] == ["C-2"]
    assert [e["type"] for e in events if e["product_id"] == rice["id"]] == ["stock.changed", "stock.low"]
    report = ok(client.get("/api/logs/verify"))
    assert report["problems"] == [] and report["complete"]


ROWS = [["商品编码", "名称", "价格", "分类", "描述", "最低库存", "最高库存", "库位", "仓库", "数量"],
        ["编码-1", "简体繁體𠀀混合", "12.30", "饮料", "", "1", "", "B区", "DEFAULT", "3"]]


@pytest.mark.parametrize("body", [
    csv_bytes(ROWS), csv_bytes(ROWS, bom=True), csv_bytes(ROWS, "gb18030"),
    csv_bytes(ROWS).replace(b",", b";"), xlsx_bytes(ROWS),
], ids=["utf-8", "utf-8 with BOM", "gb18030", "semicolons", "xlsx"])
def test_every_encoding_excel_writes_reads_the_same_text(client, body):
    ok(upload(client, body))
    product = products_by_sku(client)["编码-1"]
    assert (product["name"], product["price"], product["category"], product["description"]) == (
        "简体繁體𠀀混合", 12.3, "饮料", None)
    assert (product["stock"]["quantity"], product["stock"]["min_quantity"], product["stock"]["location"]) == (3, 1, "B区")


def test_xlsx_numbers_and_codes_of_digits_read_as_written(client):
    ok(send(client, xlsx_bytes([["sku", "name", "price", "barcode", "quantity"], [1001, "数字", 19.9, 6901234567892, 4.0]]),
            content_type=XLSX))
    product = products_by_sku(client)["1001"]
    assert (product["price"], product["barcode"], product["stock"]["quantity"]) == (19.9, "6901234567892", 4)


def _zip_of(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("body", [
    b"", b"   \r\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64,
    b"PK\x03\x04 truncated", _zip_of("hello.txt", b"hi"), bytes(range(256)) * 4, b"\xff\xfe\xfd\x80\x81" * 10,
    b'sku,name\r\n"unterminated,x\r\n', b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
], ids=["empty", "blank", "png", "xls", "truncated zip", "zip of text", "binary", "neither utf-8 nor gb18030",
        "broken quoting", "pdf"])
def test_what_is_not_a_spreadsheet_is_a_400_never_a_500(client, body):
    details = assert_error(send(client, body), 400, "VALIDATION_ERROR")
    assert details


def test_limits_on_size_rows_and_cells(db_url):
    app = make_app(db_url, IMPORT_MAX_BYTES=2000, IMPORT_MAX_ROWS=3, IMPORT_MAX_CELL=50)
    client = app.test_client()
    header = ["sku", "name", "price"]
    assert_error(send(client, b"sku,name,price\r\n" + b"X" * 70_000), 413, "PAYLOAD_TOO_LARGE")
    details = assert_error(send(client, b"sku,name,price\r\n" + b"A,b,1\r\n" * 300), 400, "VALIDATION_ERROR")
    assert "2000" in details["file"]
    details = assert_error(send(client, csv_bytes([header] + [[f"R{i}", "n", "1"] for i in range(4)])), 400,
                           "VALIDATION_ERROR")
    assert "3" in details["file"]
    ok(send(client, csv_bytes([header] + [[f"R{i}", "n", "1"] for i in range(3)])))
    details = assert_error(send(client, csv_bytes([header, ["L", "长" * 51, "1"]])), 400, "VALIDATION_ERROR")
    assert details["errors"][0]["row"] == 2


def test_an_upload_needs_a_file_and_a_spreadsheet_type(client):
    assert_error(client.post("/api/import/products", json={"sku": "x"}), 415, "UNSUPPORTED_MEDIA_TYPE")
    assert_error(client.post("/api/import/products", data={"other": "x"}, content_type="multipart/form-data"), 400,
                 "VALIDATION_ERROR")


def test_an_import_larger_than_the_json_limit_is_accepted(client):
    rows = [["sku", "name", "price", "description"]] + [[f"BIG-{i}", "大文件", "1", "字" * 300] for i in range(1500)]
    body = csv_bytes(rows)
    assert len(body) > 1024 * 1024
    assert ok(upload(client, body))["created"] == 1500


def test_a_dry_run_answers_what_the_import_will_do_and_changes_nothing(client, catalogue):
    body = csv_bytes([["sku", "name", "price", "quantity"], ["茶-001", "西湖龙井 250g", "90", "12"], ["D-9", "新", "1", "2"]])
    logs, state = log_total(client), products_by_sku(client)
    preview = ok(send(client, body, dry_run=True))
    assert products_by_sku(client) == state and log_total(client) == logs
    applied = ok(send(client, body))
    assert {**preview, "dry_run": False} == applied == {"rows": 2, "created": 1, "updated": 1, "unchanged": 0,
                                                        "stock_adjusted": 1, "errors": [], "dry_run": False}


def test_a_barcode_held_by_another_product_is_an_error(client, catalogue):
    body = csv_bytes([["sku", "name", "price", "barcode"], ["E-1", "新", "1", "6901234567892"],
                      ["E-2", "新", "1", "12345"], ["E-3", "新", "1", "12345"]])
    details = assert_error(send(client, body), 400, "VALIDATION_ERROR")
    assert [(e["row"], e["column"]) for e in details["errors"]] == [(2, "barcode"), (4, "barcode")]


def test_exports_stream_files_of_every_kind(client, catalogue):
    workbook = load_workbook(io.BytesIO(client.get("/api/export/stock?format=xlsx").data), read_only=True)
    rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert rows[1][:5] == ("茶-001", "西湖龙井 250g", "DEFAULT", 12, 12)
    logs = read_csv(client.get(f"/api/export/logs?product_id={catalogue[0]['id']}&action=in").data)
    assert [row[3] for row in logs[1:]] == ["茶-001"]
    assert read_csv(client.get("/api/export/logs?action=out").data) == [logs[0]]
    assert_error(client.get("/api/export/stock?warehouse_id=2"), 404, "NOT_FOUND")
    assert_error(client.get("/api/export/logs?format=pdf"), 400, "VALIDATION_ERROR")


def test_the_command_line_imports_and_exports(runner, client, tmp_path):
    source = tmp_path / "products.csv"
    source.write_bytes(csv_bytes([["sku", "name", "price", "quantity"], ["CLI-1", "命令行", "3", "6"]], "gb18030"))
    result = runner.invoke(args=["import", "products", str(source), "--dry-run"])
    assert result.exit_code == 0 and '"dry_run": true' in result.output
    assert products_by_sku(client) == {}
    result = runner.invoke(args=["import", "products", str(source), "--operator", "盘点员"])
    assert result.exit_code == 0 and '"created": 1' in result.output
    assert ok(client.get("/api/logs/"))["items"][0]["operator"] == "盘点员"
    target = tmp_path / "logs.xlsx"
    result = runner.invoke(args=["export", "logs", "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = list(load_workbook(target, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[1][3:6] == ("CLI-1", "命令行", "adjust")
    source.write_bytes(b"sku,price\r\nCLI-2,abc\r\n")
    result = runner.invoke(args=["import", "products", str(source)])
    assert result.exit_code == 1 and "CLI-2" not in products_by_sku(client)


def test_an_xlsx_export_leaves_out_the_control_characters_a_worksheet_cannot_hold(client, create_product):
    create_product(sku="CTL-1", name="控制\x01字符", description="第一行\n第二行\x07")
    exported = client.get("/api/export/products?format=xlsx")
    assert exported.status_code == 200
    rows = list(load_workbook(io.BytesIO(exported.data), read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[1][:2] == ("CTL-1", "控制字符") and rows[1][5] == "第一行\n第二行"


def test_a_long_step_reports_progress_until_it_ends(monkeypatch):
    import heartbeat

    beats = []
    monkeypatch.setattr(heartbeat, "KEEP_ALIVE_EVERY", 0.01)
    monkeypatch.setattr(heartbeat, "_notify", lambda: beats.append(1))
    with heartbeat.while_busy():
        time.sleep(0.2)
    count = len(beats)
    time.sleep(0.05)
    assert count >= 3 and len(beats) == count  # reported while busy, and no more after


def test_an_import_announces_its_changes_on_the_event_feed(client, create_product):
    create_product(sku="EV-1", name="旧名")
    body = csv_bytes([["sku", "name", "price", "quantity"], ["EV-1", "新名", "19.99", ""], ["EV-2", "新品", "1", "4"]])
    ok(send(client, body, dry_run=True))
    before = len(ok(client.get("/api/events/?after=0&limit=500"))["items"])
    ok(send(client, body))
    events = ok(client.get("/api/events/?after=0&limit=500"))["items"][before:]
    # In the order one request at a time would give: a product exists before its count moves.
    assert [(e["type"], e["data"].get("sku")) for e in events] == [
        ("product.created", "EV-2"), ("product.updated", "EV-1"), ("stock.changed", "EV-2")]


def test_a_minimum_raised_by_an_import_announces_the_product_low(client, create_product):
    create_product(sku="LOW-1", initial_quantity=2)
    before = len(ok(client.get("/api/events/?after=0&limit=500"))["items"])
    ok(send(client, csv_bytes([["sku", "name", "price", "min_quantity"], ["LOW-1", "测试商品", "19.99", "3"]])))
    events = ok(client.get("/api/events/?after=0&limit=500"))["items"][before:]
    assert [e["type"] for e in events] == ["product.updated", "stock.low"]
    assert (events[1]["data"]["sku"], events[1]["data"]["quantity"], events[1]["data"]["min_quantity"]) == ("LOW-1", 2, 3)
