"""Response bodies: compact UTF-8 JSON, Chinese as it is, every value written as Flask writes it."""
from datetime import date, datetime, timezone
from decimal import Decimal


def test_a_body_carries_chinese_as_utf8_text_not_escapes(client, create_product):
    product = create_product(name="测试商品", category="食品")
    body = client.get(f"/api/products/{product['id']}").data
    assert "测试商品".encode() in body and b"\\u" not in body
    assert body.startswith(b'{"success":true,"message":"')  # compact, envelope keys in contract order
    assert body.endswith(b"}\n")


def test_values_outside_what_orjson_writes_are_written_as_before(app):
    encoded = app.json.dumps({"n": 2**70, 3: Decimal("1.50"), "day": date(2026, 11, 25),
                              "at": datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)})
    assert app.json.loads(encoded) == {"n": 2**70, "3": "1.50", "day": "Wed, 25 Nov 2026 00:00:00 GMT",
                                       "at": "Wed, 25 Nov 2026 08:00:00 GMT"}
    assert app.json.dumps({"n": 2**70, "m": [1, 2]}) == '{"n":1180591620717411303424,"m":[1,2]}'


def test_a_number_too_big_for_64_bits_in_a_body_answers_400(client):
    answer = client.post("/api/stock/add", data='{"product_id": 1, "quantity": 100000000000000000000000000000}',
                         content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "VALIDATION_ERROR"
