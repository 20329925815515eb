"""Errors the services raise; the global handler renders each as the JSON envelope."""
from typing import Any, ClassVar


class AppError(Exception):
    """An expected failure with its HTTP status, stable `error.code` and details."""

    status = 400
    code = "VALIDATION_ERROR"
    message = "请求参数错误"
    headers: ClassVar[dict[str, str]] = {}  # response headers the answer needs (WWW-Authenticate, Retry-After)

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details or {}
        self.headers = {**self.headers, **(headers or {})}


class ValidationFailed(AppError):
    pass


class Unauthorized(AppError):
    status, code, message = 401, "UNAUTHORIZED", "需要有效的 API 密钥（Authorization: Bearer <key> 或 X-API-Key）"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="inventory"'}


class Forbidden(AppError):
    status, code, message = 403, "FORBIDDEN", "该 API 密钥的角色无权执行此操作"


class RateLimited(AppError):
    status, code, message = 429, "RATE_LIMITED", "请求过于频繁，请稍后重试"


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


class PayloadTooLarge(AppError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "请求体过大"


class UnsupportedMediaType(AppError):
    status, code, message = 415, "UNSUPPORTED_MEDIA_TYPE", "请求体必须是 JSON（Content-Type: application/json）"


class ServiceUnavailable(AppError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "数据库暂时不可用，请稍后重试"


class WriteConflict(ServiceUnavailable):
    """Concurrent writers kept colliding (deadlocks, or certification conflicts between
    Galera nodes) for the whole retry budget: nothing was written, and the same request
    retried a moment later (with the same Idempotency-Key) will most likely succeed."""

    message = "写入冲突，重试次数已用完，请稍后使用相同的 Idempotency-Key 重试"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}

    def __init__(self, details: dict[str, Any] | None = None):
        super().__init__(details={"cause": "write_conflict", **(details or {})})


class NodeNotReady(ServiceUnavailable):
    """The Galera node this instance uses is not synced or not in the primary component."""

    message = "数据库节点未就绪（未同步或不在集群的主组件中），请稍后重试"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}
