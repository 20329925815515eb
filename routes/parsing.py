"""Reading requests into the pydantic models and dumping results for the envelope."""
import json
from decimal import Decimal
from typing import Any, TypeVar

from flask import Request, request
from pydantic import BaseModel

from utils.exceptions import UnsupportedMediaType, ValidationFailed

Model = TypeVar("Model", bound=BaseModel)


def json_body(model: type[Model]) -> Model:
    """The request's JSON body as `model`; 415 when it is not JSON, 400 when invalid.

    Numbers with a fraction are read as Decimal, never as binary floats, so
    `19.999999999999999999` is seen as written (and refused) instead of rounded.
    `NaN`/`Infinity` (not JSON, but common) reach the field checks, which name the field.
    A body nested deeper than the parser's recursion limit is refused like malformed JSON.
    JSON is UTF-8 (RFC 8259): a body declared in another charset is refused rather than
    read as UTF-8 and stored as a text its sender did not mean.
    """
    if not request.is_json:
        raise UnsupportedMediaType()
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() != "utf-8":
        raise UnsupportedMediaType("请求体必须是 UTF-8 编码的 JSON（RFC 8259）", {"charset": charset})
    try:
        document = json.loads(request.get_data(cache=True), parse_float=Decimal, parse_constant=Decimal)
    except ValueError:  # malformed JSON, or bytes that are not UTF-8
        raise ValidationFailed("请求体不是合法的 JSON", {"body": "JSON 格式错误"}) from None
    except RecursionError:  # `[[[[…` a thousand deep: nothing here nests that far
        raise ValidationFailed("请求体不是合法的 JSON", {"body": "JSON 嵌套过深"}) from None
    return model.model_validate(document)


def query_args(model: type[Model]) -> Model:
    """The query string as `model` (the first value of a repeated parameter)."""
    return model.model_validate(request.args.to_dict(flat=True))


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json", by_alias=True)


def dump_all(model: type[BaseModel], objects: list[Any]) -> list[dict[str, Any]]:
    return [dump(model, obj) for obj in objects]


def header(current: Request, name: str) -> str | None:
    """A request header as sent, or None. Read from the WSGI environ: werkzeug's
    `headers.get` raises and catches a KeyError for each header that is absent, and
    most requests carry none of the optional ones. Not for Content-Type and
    Content-Length, which WSGI keeps without the HTTP_ prefix."""
    return current.environ.get("HTTP_" + name.upper().replace("-", "_"))


def if_match() -> frozenset[str] | None:
    """The entity tags of `If-Match` as sent (`*` included); None when absent.
    Comparison is strong, as RFC 9110 asks: a weak `W/"3"` never matches."""
    header_value = header(request, "If-Match")
    if header_value is None:
        return None
    return frozenset(tag.strip() for tag in header_value.split(",") if tag.strip())


def optional_json_body(model: type[Model]) -> Model:
    """`json_body`, where an empty body stands for `{}` (every field optional)."""
    if not request.get_data(cache=True) and not request.is_json:
        return model.model_validate({})
    return json_body(model)
