"""The one place exceptions become the JSON error envelope (or, under `/console/`,
a friendly HTML page)."""
from flask import Flask, make_response
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from db.galera import NODE_NOT_READY, error_code
from rate_limits import retry_after_seconds
from routes.console.errors import error_page, is_console_request
from services.transaction import safe_rollback
from utils.exceptions import AppError, NodeNotReady, RateLimited, ServiceUnavailable
from utils.response_handler import error
from utils.validation import field_details

HTTP_ERRORS = {
    400: ("VALIDATION_ERROR", "请求格式错误"),
    404: ("NOT_FOUND", "资源不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    413: ("PAYLOAD_TOO_LARGE", "请求体过大（上限 1 MiB）"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "请求体必须是 JSON（Content-Type: application/json）"),
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def app_error(exc: AppError):
        safe_rollback()  # a Galera node outside the primary component refuses even ROLLBACK (1047)
        response = make_response(error_page(exc.status, exc.message)) if is_console_request() else error(
            exc.status, exc.code, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        return app_error(RateLimited(details={"limit": str(exc.limit.limit)},
                                     headers={"Retry-After": str(retry_after_seconds())}))

    @app.errorhandler(ValidationError)
    def validation_error(exc: ValidationError):
        if is_console_request():
            return error_page(400, "请求参数错误")
        return error(400, "VALIDATION_ERROR", "请求参数错误", field_details(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code, message = HTTP_ERRORS.get(exc.code, (f"HTTP_{exc.code}", exc.name))
        if is_console_request():
            return error_page(exc.code, exc.description if isinstance(exc, CSRFError) else None)
        response = error(exc.code, code, message)
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        """Lost connection, lock timeout, database down: retryable, so 503."""
        app.logger.warning("database unavailable: %s", exc.orig)
        safe_rollback()
        if error_code(exc) == NODE_NOT_READY:  # the load balancer's readiness check moves off this node
            return app_error(NodeNotReady(details={"database": "node not ready"}))
        return app_error(ServiceUnavailable())

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return database_unavailable(exc)
        app.logger.exception("unhandled error")
        safe_rollback()
        if is_console_request():
            return error_page(500)
        return error(500, "INTERNAL_ERROR", "服务器内部错误")
