"""Reading requests into the pydantic models and dumping results for the envelope."""
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from utils.exceptions import UnsupportedMediaType

Model = TypeVar("Model", bound=BaseModel)


def json_body(model: type[Model]) -> Model:
    """The request's JSON body as `model`; 415 when it is not JSON, 400 when invalid."""
    if not request.is_json:
        raise UnsupportedMediaType()
    return model.model_validate_json(request.get_data(cache=True) or b"")


def query_args(model: type[Model]) -> Model:
    """The query string as `model` (the first value of a repeated parameter)."""
    return model.model_validate(request.args.to_dict(flat=True))


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")


def dump_all(model: type[BaseModel], objects: list[Any]) -> list[dict[str, Any]]:
    return [dump(model, obj) for obj in objects]


def if_match() -> frozenset[str] | None:
    """The entity tags of `If-Match` as sent (`*` included); None when absent.
    Comparison is strong, as RFC 9110 asks: a weak `W/"3"` never matches."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    return frozenset(tag.strip() for tag in header.split(",") if tag.strip())
