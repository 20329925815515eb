"""Field types shared by the request and response models."""
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import combinations
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    computed_field,
    field_validator,
)

MAX_ID = 2**63 - 1
MAX_CHANGE = 1_000_000_000
# Far above any real count, far below the 64-bit column limit.
MAX_STOCK = 10**15
# Past the bounds of every whole-number field (the largest is MAX_ID, about 9.2 × 10^18).
BEYOND_DIGITS = 20
BEYOND_EVERY_BOUND = 10**BEYOND_DIGITS


def _json_number(value: Any) -> Decimal:
    """A JSON number (never a string or boolean) as an exact Decimal. Bodies are
    parsed with fractions as Decimal; a float only arrives from Python callers."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("必须是数字")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise ValueError("必须是有限的数字")
    return number.copy_abs() if number.is_zero() else number  # `-0.0` is 0, as the database stores it


def _json_whole_number(value: Any) -> int:
    """An integer as JSON Schema means it: 5 and 5.0 yes; 1.5, "5", true, null no."""
    try:
        number = _json_number(value)
    except ValueError:
        raise ValueError("必须是整数") from None
    if number != number.to_integral_value():
        raise ValueError("必须是整数")
    if number.adjusted() >= BEYOND_DIGITS:  # read off the exponent: no arithmetic, no overflow
        # int() of a body's `1e999999999` would take minutes; any value this large fails
        # the field's own bound check just the same, with its usual message.
        return BEYOND_EVERY_BOUND if number > 0 else -BEYOND_EVERY_BOUND
    return int(number)


def whole_number(ge: int, le: int):
    """A JSON integer within [ge, le]; the bounds are on the integer schema, so they
    are checked after the JSON-number rule and show in the OpenAPI document."""
    if not -BEYOND_EVERY_BOUND < ge <= le < BEYOND_EVERY_BOUND:
        raise ValueError(f"bounds [{ge}, {le}] must lie within ±BEYOND_EVERY_BOUND")
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_json_whole_number)]


Id = whole_number(1, MAX_ID)
ChangeQuantity = whole_number(1, MAX_CHANGE)
Count = whole_number(0, MAX_CHANGE)
StockLevel = whole_number(0, MAX_STOCK)
MONEY_SCHEMA = {"type": "number", "minimum": 0, "maximum": 9999999999.99, "multipleOf": 0.01}
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    BeforeValidator(_json_number),
    WithJsonSchema(MONEY_SCHEMA),
]


# Unicode's White_Space, trimmed off every text a request sends, as a regex class that
# JSON Schema (ECMA 262), Python and pydantic's Rust engine all read alike.
WHITESPACE = "\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
HAS_WHITESPACE = re.compile(f"[{WHITESPACE}]")
SURROUNDING_WHITESPACE = re.compile(f"^[{WHITESPACE}]+|[{WHITESPACE}]+$")
# Text with something besides whitespace in it (unanchored: JSON Schema patterns search).
NOT_BLANK_PATTERN = f"[^{WHITESPACE}]"
# A code (SKU, barcode): no whitespace inside; around it, trimmed away.
CODE_PATTERN = f"^[{WHITESPACE}]*[^{WHITESPACE}]+[{WHITESPACE}]*$"


# Texts are trimmed after their length is checked: the limits count the text as sent,
# as the document's `maxLength` does, so no request is longer than the document allows.
def _trimmed(text: str) -> str:
    return SURROUNDING_WHITESPACE.sub("", text)


def _trimmed_or_none(text: str | None) -> str | None:
    """Blank means absent (stored as NULL)."""
    return _trimmed(text) or None if text is not None else None


def _not_blank(text: str) -> str:
    text = _trimmed(text)
    if not text:
        raise ValueError("不能为空")
    return text


def _code(text: str) -> str:
    text = _not_blank(text)
    if HAS_WHITESPACE.search(text):
        raise ValueError("不能包含空格等空白字符")
    return text


def required_text(max_length: int):
    """Text of 1..`max_length` characters, not blank."""
    return Annotated[str, Field(min_length=1, max_length=max_length, json_schema_extra={"pattern": NOT_BLANK_PATTERN}),
                     AfterValidator(_not_blank)]


def code():
    """A code of 1..64 characters without whitespace (SKU, barcode)."""
    return Annotated[str, Field(min_length=1, max_length=64, json_schema_extra={"pattern": CODE_PATTERN}),
                     AfterValidator(_code)]


def optional_text(max_length: int):
    """Free text up to `max_length`; blank means absent (stored as NULL)."""
    return Annotated[str | None, Field(max_length=max_length), AfterValidator(_trimmed_or_none)]


class RequestBody(BaseModel):
    """A JSON request body: exact types, no unknown fields; texts trimmed by their types."""

    model_config = ConfigDict(strict=True, extra="forbid")


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
    """A date in any ISO 8601 spelling (`2026-11-24`, `20261124`, `2026-W48-2`) stays a
    date (a whole day); a datetime without offset is UTC."""
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass  # not a date alone: a date and time, or neither
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("必须是日期或日期时间（ISO 8601）") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("日期超出范围") from None


# C0 and C1 controls, DEL included.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _no_control_characters(value: str | None) -> str | None:
    if value is not None and CONTROL_CHARACTERS.search(value):
        raise ValueError("不能包含控制字符")
    return value


def filter_text(max_length: int):
    """A list's text filter (a search, a category, an operator), trimmed; blank is no
    filter. Control characters are refused: SQLite's LIKE ends its pattern at a NUL and
    MySQL's collations skip them, so `?q=%00` matched every row instead of none."""
    return Annotated[str | None, Field(max_length=max_length, json_schema_extra={
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}), AfterValidator(_no_control_characters),
        AfterValidator(_trimmed_or_none)]


QueryBool = Annotated[bool, BeforeValidator(_query_bool)]
DateOrDateTime = Annotated[date | datetime, BeforeValidator(_date_or_datetime)]
QueryId = Annotated[int, Field(ge=1, le=MAX_ID)]
QueryMoney = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2), WithJsonSchema(MONEY_SCHEMA)]


class QueryModel(BaseModel):
    """Query-string parameters: unknown ones are ignored, known ones must be valid."""

    model_config = ConfigDict(extra="ignore")


MAX_PER_PAGE = 100
# Every page of any list can be asked for, and its OFFSET, (page − 1) × per_page, still
# fits the databases' 64-bit integers.
MAX_PAGE = MAX_ID // MAX_PER_PAGE


# A cursor is URL-safe base64 of a row's sort values: a name of 200 characters, each
# written as \uXXXX at worst, takes ~1,650 (gunicorn.conf.py takes request lines to 8 KB).
MAX_CURSOR = 2048
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def no_page_number(value, info: ValidationInfo, *, exclusive: tuple[str, ...] = ()):
    """A cursor starts a page by itself: not with a page number, nor with another cursor."""
    if value is not None:
        if info.data.get("page", 1) != 1:
            raise ValueError("page 不为 1 时不能使用")
        given = [name for name in exclusive if info.data.get(name) is not None]
        if given:
            raise ValueError(f"不能与 {given[0]} 同时使用")
    return value


def paging_rule(cursors: tuple[str, ...], described: str) -> dict:
    """For the document: a list's page number and cursors travel as one `paging` query
    parameter whose schema says what `no_page_number` enforces (a cursor with no page
    number but 1, and one cursor at a time)."""
    with_a_page = [{"required": [cursor, "page"], "properties": {"page": {"not": {"const": 1}}}} for cursor in cursors]
    together = [{"required": list(pair)} for pair in combinations(cursors, 2)]
    return {"x-parameter-group": "paging", "not": {"anyOf": with_a_page + together},
            "description": f"{described} Cursors are opaque: only one the service answered is valid, any other is "
                           f"a 400."}


class PageQuery(QueryModel):
    """`page` (1..MAX_PAGE) and `per_page` (1..100) for every list, or instead of a page
    number a cursor from an earlier page (services/pagination.py)."""

    model_config = ConfigDict(json_schema_extra=paging_rule(
        ("after", "before"), "`page`, or instead a cursor from an earlier page: `after` (its `pagination.next_after`) "
                             "or `before` (its `pagination.prev_before`), one at a time, with `page` 1 or none."))

    page: int = Field(1, ge=1, le=MAX_PAGE)
    per_page: int = Field(20, ge=1, le=MAX_PER_PAGE)
    after: str | None = Field(None, max_length=MAX_CURSOR, pattern=CURSOR_PATTERN,
                              description="The rows after this one: the previous page's `pagination.next_after`")
    before: str | None = Field(None, max_length=MAX_CURSOR, pattern=CURSOR_PATTERN,
                               description="The rows before this one: the next page's `pagination.prev_before`")

    @field_validator("after")
    @classmethod
    def _after_alone(cls, after: str | None, info: ValidationInfo) -> str | None:
        return no_page_number(after, info)

    @field_validator("before")
    @classmethod
    def _before_alone(cls, before: str | None, info: ValidationInfo) -> str | None:
        return no_page_number(before, info, exclusive=("after",))


# ---- responses ----

class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


JsonMoney = Annotated[Decimal, PlainSerializer(float, return_type=float), WithJsonSchema(MONEY_SCHEMA, mode="serialization")]


class HeldOut(ResponseModel):
    """A count as every stock object shows it: on hand, held by active reservations
    (past-due ones left out), and what is left to sell."""

    quantity: int
    reserved: int = Field(0, description="Held by active, unexpired reservations")

    @computed_field(description="quantity − reserved; negative after a count below what is reserved")
    @property
    def available(self) -> int:
        return self.quantity - self.reserved
