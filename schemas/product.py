"""Product request and response models."""
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.common import (
    Count,
    JsonMoney,
    Money,
    PageQuery,
    QueryMoney,
    RequestBody,
    ResponseModel,
    filter_text,
    optional_text,
)

Name = Annotated[str, Field(min_length=1, max_length=200)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Description = optional_text(2000)
Category = optional_text(100)
Location = optional_text(100)

PRODUCT_SORTS = ("id", "name", "price", "sku", "created_at", "updated_at")
ProductSort = Literal[PRODUCT_SORTS + tuple(f"-{key}" for key in PRODUCT_SORTS)]


class ProductCreate(RequestBody):
    name: Name
    sku: Sku
    price: Money
    description: Description = None
    category: Category = None
    min_quantity: Count = 0
    max_quantity: Count | None = None
    location: Location = None
    initial_quantity: Count = 0


class ProductUpdate(RequestBody):
    """Only the fields sent change; `null` clears an optional field."""

    name: Name = None
    sku: Sku = None
    price: Money = None
    description: Description = None
    category: Category = None
    min_quantity: Count = None
    max_quantity: Count | None = None
    location: Location = None

    @model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_fields_set:
            raise ValueError("至少提供一个要修改的字段")
        return self


class ProductQuery(PageQuery):
    q: filter_text(100) = None
    category: filter_text(100) = None
    min_price: QueryMoney | None = None
    max_price: QueryMoney | None = None
    sort: ProductSort = "id"


class StockSummaryOut(ResponseModel):
    quantity: int
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
    created_at: datetime
    updated_at: datetime
    stock: StockSummaryOut


class CategoryOut(ResponseModel):
    category: str
    product_count: int
