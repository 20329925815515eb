"""Rules of the API that JSON Schema cannot state, taught to the contract fuzz
(tests/test_contract_fuzz.py): applied to each request just before it is sent, in every
phase, so that no request the document's descriptions call invalid is sent as valid."""
import uuid

import schemathesis

from routes.idempotency import VALID_KEY


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _thresholds_in_order(body) -> None:
    """`max_quantity` below a `min_quantity` sent in the same body is a 400 (product create,
    edit, stocktake): JSON Schema cannot compare two fields, so the two are swapped. Both
    fields have the same bounds, so a body that breaks them still breaks them."""
    if isinstance(body, dict):
        low, high = body.get("min_quantity"), body.get("max_quantity")
        if _number(low) and _number(high) and high < low:
            body["min_quantity"], body["max_quantity"] = high, low


def _fresh_idempotency_key(headers) -> None:
    """A client draws a fresh Idempotency-Key for each new request. The fuzzer's keys repeat
    ("0", the document's example…), so most writes would only meet 422 (the key was used
    for another request): a well-formed key is made unique; a malformed one is sent as
    drawn, for the 400 it must get."""
    key = (headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.fullmatch(key) and len(key) <= 222:
        headers["Idempotency-Key"] = f"{key}-{uuid.uuid4().hex}"


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    _thresholds_in_order(case.body)
    _fresh_idempotency_key(case.headers)
