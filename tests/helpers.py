"""Small assertions the contract tests share."""
from contextlib import contextmanager

from sqlalchemy import event

from db import db

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


@contextmanager
def sorted_statements():
    """The statements with an ORDER BY (and their parameters) run on the app's engine
    inside the block, for a test to EXPLAIN the one a page was read with. Call it in an
    app context."""
    statements = []

    def record(connection, cursor, statement, parameters, *args):
        if "ORDER BY" in statement:
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
