"""Response bodies encoded by orjson: a product read spent ~20 µs of its ~190 µs in the
standard library's encoder, orjson takes a quarter of that."""
from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

# Dates and dataclasses go to Flask's own `default`, so every type is written as before;
# int dict keys become strings, as the standard library writes them.
OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider, encoding with orjson: UTF-8 text (Chinese as it is, never
    `\\u` escapes), compact, keys in insertion order. Anything orjson refuses (an integer
    beyond 64 bits echoed in an error's details) is left to the standard library."""

    ensure_ascii = False
    sort_keys = False

    def _encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self.default, option=OPTIONS)
        except orjson.JSONEncodeError:
            return super().dumps(obj, separators=(",", ":")).encode()

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # a caller asking for its own formatting (indent, …)
            return super().dumps(obj, **kwargs)
        return self._encode(obj).decode()

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if self._app.debug:  # pretty-printed for people reading the development server
            return super().response(*args, **kwargs)
        body = self._encode(self._prepare_response_obj(args, kwargs))
        return self._app.response_class(body + b"\n", mimetype=self.mimetype)  # a newline, as Flask ends it
