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


# Integers up to this many digits are written out; int() of `1e999999999` would take minutes.
MAX_WRITTEN_DIGITS = 40


def _canonical_number(number: Decimal) -> str:
    """One text for each value, whatever its spelling (`5`, `5.0`, `0.5e1`): an integer in
    digits, a number a float holds exactly as Python writes the float, and any other as its
    digits and exponent, trailing zeros dropped. Exact, so bodies that differ in the 20th
    decimal differ here too; and fingerprints made when numbers were written through
    int/float still match."""
    if not number.is_finite():
        return json.dumps(float(number))  # NaN, Infinity, -Infinity
    if number == number.to_integral_value():
        if number.adjusted() < MAX_WRITTEN_DIGITS:
            return str(int(number))
    elif Decimal(repr(as_float := float(number))) == number:
        return repr(as_float)
    sign, digits, exponent = number.as_tuple()
    written = "".join(map(str, digits)).rstrip("0")
    return f"{'-' if sign else ''}{written}e{exponent + len(digits) - len(written)}"


def _canonical(document) -> str:
    """JSON text with keys sorted, no spaces and numbers written by `_canonical_number`."""
    if isinstance(document, dict):
        return "{" + ",".join(f"{_canonical(key)}:{_canonical(document[key])}" for key in sorted(document)) + "}"
    if isinstance(document, list):
        return "[" + ",".join(map(_canonical, document)) + "]"
    if isinstance(document, Decimal):
        return _canonical_number(document)
    return json.dumps(document, ensure_ascii=False)


def canonical_body(raw: bytes) -> bytes:
    """The body as a fingerprint reads it: JSON canonicalised, so key order, spacing and
    `5` versus `5.0` do not make a retry look like a different request; a body that is
    not JSON, or nests too deep to canonicalise, byte for byte."""
    try:
        document = json.loads(raw, parse_int=Decimal, parse_float=Decimal, parse_constant=Decimal)
        return _canonical(document).encode()
    except (ValueError, RecursionError):
        return raw


def _fingerprint() -> str:
    """Method, path and canonical body."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(canonical_body(request.get_data(cache=True)))
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
