"""Small assertions the contract tests share."""

LOG_FIELDS = {"id", "product_id", "action", "quantity", "before_quantity", "after_quantity",
              "reason", "operator", "sku", "name", "created_at"}
MISSING_ID = 2**62  # a valid id no test database reaches


def ok(response, status: int = 200):
    """The `data` of a success envelope with the given status."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["success"] is True
    return body["data"]


def assert_error(response, status: int, code: str) -> dict:
    """The `error.details` of an error envelope with the given status and code."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["success"] is False
    assert body["error"]["code"] == code
    return body["error"]["details"]
