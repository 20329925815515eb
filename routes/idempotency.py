"""The `Idempotency-Key` request header, applied to a view with `@idempotent`."""
import hashlib
import json
import re
from decimal import Decimal
from functools import wraps

from flask import Response, request

from routes.access import current_caller
from routes.parsing import header
from services import idempotency_service
from utils.exceptions import ValidationFailed

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
VALID_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _canonical_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _fingerprint() -> str:
    """Method, path and body; the body canonicalised when it is JSON, so key order,
    spacing and `5` versus `5.0` do not make a retry look like a different request."""
    raw = request.get_data(cache=True)
    try:
        document = json.loads(raw, parse_float=Decimal)
        body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          default=_canonical_number).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def current_scope() -> str:
    """Whose keys these are: each API key has its own, so two clients that pick the
    same Idempotency-Key never see each other's responses; anonymous callers share one."""
    caller = current_caller()
    return f"key:{caller.key_id}" if caller else "public"


def idempotent(view):
    """Run the view at most once per key: a retry gets the stored response back."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        key = header(request, HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not VALID_KEY.fullmatch(key):
            raise ValidationFailed(details={HEADER: "1–255 个可见 ASCII 字符"})

        def produce() -> idempotency_service.Outcome:
            response = view(*args, **kwargs)
            return idempotency_service.Outcome(
                response.status_code, response.get_data(as_text=True),
                response.headers.get("Location"), response.headers.get("ETag"),
            )

        outcome, replayed = idempotency_service.run_once(current_scope(), key, _fingerprint(), produce)
        response = Response(outcome.body, status=outcome.status_code, mimetype="application/json")
        if outcome.location:
            response.headers["Location"] = outcome.location
        if outcome.etag:
            response.headers["ETag"] = outcome.etag
        if replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return response

    wrapper.idempotent = True  # the OpenAPI document declares the header
    return wrapper
