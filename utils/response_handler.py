"""The response envelope every endpoint answers with."""
from typing import Any

from flask import Response, jsonify

from utils.pagination import Page


def success(data: Any = None, message: str = "成功", status: int = 200, headers: dict | None = None) -> Response:
    """`{"success": true, "message", "data"}` with the given status."""
    response = jsonify({"success": True, "message": message, "data": data})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def paginated(items: list, page: Page, message: str = "成功") -> Response:
    """A list envelope: `data.items` plus `data.pagination`."""
    return success({"items": items, "pagination": page.pagination()}, message)


def error(status: int, code: str, message: str, details: dict | None = None) -> Response:
    """`{"success": false, "message", "error": {"code", "details"}}`."""
    response = jsonify(
        {"success": False, "message": message, "error": {"code": code, "details": details or {}}}
    )
    response.status_code = status
    return response
