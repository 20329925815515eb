"""Product request and response models."""
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.common import (
    Count,
    HeldOut,
    JsonMoney,
    Money,
    PageQuery,
    QueryMoney,
    RequestBody,
    ResponseModel,
    code,
    filter_text,
    optional_text,
    required_text,
)

Name = required_text(200)
Sku = code()
Description = optional_text(2000)
Category = optional_text(100)
Location = optional_text(100)

PRODUCT_SORTS = ("id", "name", "price", "sku", "created_at", "updated_at")
ProductSort = Literal[PRODUCT_SORTS + tuple(f"-{key}" for key in PRODUCT_SORTS)]
GTIN_LENGTHS = (8, 12, 13, 14)
GTIN_SHAPE = "^(?:[0-9]{8}|[0-9]{12,14})$"


def gtin_check_digit(body: str) -> int:
    """The GS1 check digit for the digits before it: weights 3, 1, 3, … from the right."""
    total = sum(int(digit) * (3 if position % 2 == 0 else 1) for position, digit in enumerate(reversed(body)))
    return -total % 10


def _valid_gtin(barcode: str) -> str:
    """A code of 8, 12, 13 or 14 digits is a GTIN (EAN-8, UPC-A, EAN-13, GTIN-14): a
    misread or mistyped one is caught by its last digit."""
    if barcode.isascii() and barcode.isdigit() and len(barcode) in GTIN_LENGTHS:
        expected = gtin_check_digit(barcode[:-1])
        if int(barcode[-1]) != expected:
            raise ValueError(f"GTIN 校验位错误：这个 {len(barcode)} 位条码的最后一位应为 {expected}")
    return barcode


# What a scanner reads: any code without spaces; a GTIN must carry its check digit. The
# schema says so as JSON Schema can: never GTIN-shaped without being of format `gtin`.
Barcode = Annotated[
    code(),
    Field(examples=["6901234567892"],
          json_schema_extra={"not": {"pattern": GTIN_SHAPE, "not": {"format": "gtin"}},
                             "description": "Any code without spaces. One of 8, 12, 13 or 14 digits is a GTIN "
                                            "(EAN-8, UPC-A, EAN-13, GTIN-14) and must end in its check digit."}),
    AfterValidator(_valid_gtin),
]


def max_not_below_min(max_quantity: int | None, info: ValidationInfo) -> int | None:
    """`max_quantity` below a `min_quantity` sent in the same body is refused here (400);
    one below the minimum already stored, by the service (409)."""
    min_quantity = info.data.get("min_quantity")
    if max_quantity is not None and min_quantity is not None and max_quantity < min_quantity:
        raise ValueError("不能小于 min_quantity")
    return max_quantity


class ProductCreate(RequestBody):
    name: Name
    sku: Sku
    price: Money
    barcode: Barcode | None = None
    description: Description = None
    category: Category = None
    min_quantity: Count = 0
    max_quantity: Count | None = None
    location: Location = None
    initial_quantity: Count = 0

    _thresholds_in_order = field_validator("max_quantity")(max_not_below_min)


class ProductUpdate(RequestBody):
    """Only the fields sent change; `null` clears an optional field. At least one field."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Name = None
    sku: Sku = None
    price: Money = None
    barcode: Barcode | None = None
    description: Description = None
    category: Category = None
    min_quantity: Count = None
    max_quantity: Count | None = None
    location: Location = None

    _thresholds_in_order = field_validator("max_quantity")(max_not_below_min)

    @model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_fields_set:
            raise ValueError("至少提供一个要修改的字段")
        return self


class ProductQuery(PageQuery):
    q: filter_text(100) = Field(None, description="Part of the name, SKU or description",
                          examples=["测试"])
    category: filter_text(100) = Field(None, examples=["测试"])
    sku: filter_text(64) = Field(None, description="Exactly this SKU", examples=["TEST-001"])
    barcode: filter_text(64) = Field(None, description="Exactly this barcode", examples=["6901234567892"])
    min_price: QueryMoney | None = Field(None, examples=[0])
    max_price: QueryMoney | None = Field(None, examples=[100])
    sort: ProductSort = "id"


class StockSummaryOut(HeldOut):
    min_quantity: int
    max_quantity: int | None
    location: str | None
    is_low: bool


class ProductOut(ResponseModel):
    id: int
    name: str
    description: str | None
    price: JsonMoney
    category: str | None
    sku: str
    barcode: str | None
    created_at: datetime
    updated_at: datetime
    stock: StockSummaryOut


class CategoryOut(ResponseModel):
    category: str
    product_count: int
