"""Errors the services raise; the global handler renders each as the JSON envelope."""
from typing import Any


class AppError(Exception):
    """An expected failure with its HTTP status, stable `error.code` and details."""

    status = 400
    code = "VALIDATION_ERROR"
    message = "请求参数错误"

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}


class ValidationFailed(AppError):
    pass


class NotFound(AppError):
    status, code, message = 404, "NOT_FOUND", "资源不存在"


class Duplicate(AppError):
    status, code, message = 409, "DUPLICATE", "数据已存在"


class InsufficientStock(AppError):
    status, code, message = 409, "INSUFFICIENT_STOCK", "库存不足"


class Conflict(AppError):
    status, code, message = 409, "CONFLICT", "状态冲突，请重试"


class PreconditionFailed(AppError):
    status, code, message = 412, "PRECONDITION_FAILED", "资源已被修改（If-Match 与当前 ETag 不符）"


class IdempotencyKeyReused(AppError):
    status, code, message = 422, "IDEMPOTENCY_KEY_REUSED", "该 Idempotency-Key 已用于另一个不同的请求"


class UnsupportedMediaType(AppError):
    status, code, message = 415, "UNSUPPORTED_MEDIA_TYPE", "请求体必须是 JSON（Content-Type: application/json）"


class ServiceUnavailable(AppError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "数据库暂时不可用，请稍后重试"
