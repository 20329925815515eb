"""Field types shared by the request and response models."""
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

MAX_ID = 2**63 - 1
MAX_CHANGE = 1_000_000_000
# Far above any real count, far below the 64-bit column limit.
MAX_STOCK = 10**15


def _json_whole_number(value: Any) -> int:
    """An integer as JSON Schema means it: 5 and 5.0 yes; 1.5, "5", true, null no."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("必须是整数")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("必须是整数")
        return int(value)
    return value


def _json_number(value: Any) -> Decimal:
    """A JSON number (never a string or boolean), kept exact as a Decimal."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("必须是数字")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("必须是有限的数字")
        return Decimal(repr(value))
    return Decimal(value)


def _blank_to_none(value: str | None) -> str | None:
    return value or None


WholeNumber = Annotated[int, BeforeValidator(_json_whole_number)]
Id = Annotated[WholeNumber, Field(ge=1, le=MAX_ID)]
ChangeQuantity = Annotated[WholeNumber, Field(ge=1, le=MAX_CHANGE)]
Count = Annotated[WholeNumber, Field(ge=0, le=MAX_CHANGE)]
StockLevel = Annotated[WholeNumber, Field(ge=0, le=MAX_STOCK)]
Money = Annotated[Decimal, BeforeValidator(_json_number), Field(ge=0, max_digits=12, decimal_places=2)]


def optional_text(max_length: int):
    """Free text up to `max_length`; blank means absent (stored as NULL)."""
    return Annotated[str | None, Field(max_length=max_length), AfterValidator(_blank_to_none)]


class RequestBody(BaseModel):
    """A JSON request body: exact types, no unknown fields, surrounding spaces trimmed."""

    model_config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True)


# ---- query strings: always text, so they are parsed leniently but within range ----

def _query_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1"}:
        return True
    if text in {"false", "0"}:
        return False
    raise ValueError("必须是 true/false/1/0")


def _date_or_datetime(value: Any) -> date | datetime:
    """`2026-11-24` stays a date (a whole day); a datetime without offset is UTC."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("必须是日期或日期时间（ISO 8601）") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]
DateOrDateTime = Annotated[date | datetime, BeforeValidator(_date_or_datetime)]
QueryId = Annotated[int, Field(ge=1, le=MAX_ID)]
QueryMoney = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]


class QueryModel(BaseModel):
    """Query-string parameters: unknown ones are ignored, known ones must be valid."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class PageQuery(QueryModel):
    """`page` (≥1) and `per_page` (1..100) for every list."""

    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(20, ge=1, le=100)


# ---- responses ----

class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


JsonMoney = Annotated[Decimal, PlainSerializer(float, return_type=float)]
