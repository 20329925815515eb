"""Abuse limits: one budget per caller (API key, or client address without one), sized
by role (config.py says which budget a keyless caller gets), counted in Redis when
RATELIMIT_STORAGE_URI points there so every worker and instance draws from the same budget."""
import math
import time

from flask import Flask, current_app, request
from flask_limiter import ApplicationLimit, Limiter

from routes.access import current_caller

# Probes must answer even for a caller who used up its budget.
EXEMPT_ENDPOINTS = {"system.health", "system.live", "system.ready"}


def _caller_key() -> str:
    caller = current_caller()
    return f"key:{caller.key_id}" if caller else f"addr:{request.remote_addr}"


def _caller_limit() -> str:
    """A key's budget is its role's. Without a key: the anonymous budget while keys are
    required (such a caller can only be refused, so it is slowed down), the operator's
    while they are not (every client is keyless then, and does real work)."""
    caller = current_caller()
    config = current_app.config
    if caller is not None:
        return config[f"RATELIMIT_{caller.role.upper()}"]
    return config["RATELIMIT_ANONYMOUS" if config["AUTH_REQUIRED"] else "RATELIMIT_OPERATOR"]


def _exempt() -> bool:
    return request.method == "OPTIONS" or request.endpoint in EXEMPT_ENDPOINTS


def register_rate_limits(app: Flask) -> None:
    """One Limiter per app (the test suite builds many apps in one process, each
    with its own storage). Its check runs as a before_request hook, so it must be
    registered after the caller is identified."""
    limiter = Limiter(
        _caller_key,
        application_limits=[ApplicationLimit(limit_provider=_caller_limit)],
        storage_uri=app.config["RATELIMIT_STORAGE_URI"],
        # A limiter storage outage must not take the inventory down with it.
        swallow_errors=not app.config["TESTING"],
    )
    limiter.request_filter(_exempt)
    limiter.init_app(app)
    app.extensions["rate_limiter"] = limiter


def retry_after_seconds() -> int:
    """Whole seconds until the breached window resets (at least 1)."""
    limiter = current_app.extensions.get("rate_limiter")
    limit = limiter.current_limit if limiter else None
    if limit is None:
        return 1
    # The window's own reset time: `reset_at` adds a second to it already.
    reset_time, _remaining = limit.window
    return max(1, math.ceil(reset_time - time.time()))
