"""Product barcodes (SPEC §3): optional, unique among live products, GTINs checked by
their last digit; and the exact `sku` and `barcode` lookups of the product and stock lists."""
import pytest

from schemas.product import gtin_check_digit
from tests.helpers import assert_error

EAN_13 = "6901234567892"
VALID_GTINS = ["96385074", "036000291452", EAN_13, "00012345678905"]  # GTIN-8, UPC-A, EAN-13, GTIN-14


def items(client, path: str, **query) -> list[dict]:
    response = client.get(path, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["items"]


@pytest.mark.parametrize("code", VALID_GTINS + ["ABC-123", "123456789", "12345678901", "1234567890123456", "X" * 64])
def test_a_barcode_is_kept_and_shown(client, create_product, code):
    product = create_product(barcode=code)
    assert product["barcode"] == code
    assert client.get(f"/api/products/{product['id']}").get_json()["data"]["barcode"] == code


def test_a_barcode_is_optional_and_can_be_cleared(client, create_product):
    assert create_product()["barcode"] is None
    product = create_product(barcode=EAN_13)
    cleared = client.patch(f"/api/products/{product['id']}", json={"barcode": None})
    assert cleared.status_code == 200 and cleared.get_json()["data"]["barcode"] is None


@pytest.mark.parametrize("code", [gtin[:-1] + str((int(gtin[-1]) + 1) % 10) for gtin in VALID_GTINS])
def test_a_gtin_with_a_wrong_check_digit_is_refused_in_chinese(client, code):
    body = {"name": "扫码商品", "sku": "SCAN-1", "price": 1, "barcode": code}
    details = assert_error(client.post("/api/products/", json=body), 400, "VALIDATION_ERROR")
    assert details == {"barcode": f"GTIN 校验位错误：这个 {len(code)} 位条码的最后一位应为 {gtin_check_digit(code[:-1])}"}
    assert items(client, "/api/products/") == []


@pytest.mark.parametrize("code", ["", "   ", "69 01234", "A\u3000B", "X" * 65, 6901234567892])
def test_a_barcode_must_be_a_code_of_1_to_64_characters(client, code):
    body = {"name": "扫码商品", "sku": "SCAN-1", "price": 1, "barcode": code}
    details = assert_error(client.post("/api/products/", json=body), 400, "VALIDATION_ERROR")
    assert set(details) == {"barcode"}


def test_surrounding_spaces_of_a_scan_are_trimmed(create_product):
    assert create_product(barcode=f"  {EAN_13}\n")["barcode"] == EAN_13


def test_a_barcode_is_unique_among_live_products(client, create_product):
    first = create_product(barcode=EAN_13)
    details = assert_error(client.post("/api/products/", json={"name": "另一个", "sku": "OTHER", "price": 1,
                                                              "barcode": EAN_13}), 409, "DUPLICATE")
    assert details == {"barcode": EAN_13}
    second = create_product()
    refused = client.put(f"/api/products/{second['id']}", json={"barcode": EAN_13})
    assert assert_error(refused, 409, "DUPLICATE") == {"barcode": EAN_13}
    assert client.put(f"/api/products/{first['id']}", json={"barcode": EAN_13}).status_code == 200  # its own


def test_a_deleted_products_barcode_is_released(client, create_product):
    first = create_product(barcode=EAN_13)
    assert client.delete(f"/api/products/{first['id']}").status_code == 200
    assert create_product(barcode=EAN_13)["barcode"] == EAN_13
    history = client.get(f"/api/logs/product/{first['id']}")
    assert history.status_code == 200  # the deleted product's ledger is still there


@pytest.mark.parametrize("path", ["/api/products/", "/api/stock/"])
def test_sku_and_barcode_filters_are_exact(client, create_product, path):
    wanted = create_product(sku="TEST-001", barcode=EAN_13)
    create_product(sku="TEST-0011", barcode="96385074")
    create_product(sku="test-001")

    def ids(**query):
        return [item.get("id", item.get("product_id")) for item in items(client, path, **query)]

    assert ids(sku="TEST-001") == [wanted["id"]]
    assert ids(barcode=EAN_13) == [wanted["id"]]
    assert ids(sku="TEST-001", barcode="96385074") == []
    assert ids(sku="NOPE") == [] and ids(barcode="NOPE") == []
    assert ids(sku="TEST-00") == []  # exact, not a part
    assert len(ids()) == 3


@pytest.mark.parametrize("path", ["/api/products/", "/api/stock/"])
def test_a_filter_longer_than_any_code_is_refused(client, path):
    details = assert_error(client.get(path, query_string={"sku": "X" * 65}), 400, "VALIDATION_ERROR")
    assert set(details) == {"sku"}


def test_the_check_digit_is_gs1s():
    """Weights 3, 1, 3, … from the right of the digits before it."""
    assert [gtin_check_digit(gtin[:-1]) for gtin in VALID_GTINS] == [int(gtin[-1]) for gtin in VALID_GTINS]
