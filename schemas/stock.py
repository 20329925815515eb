"""Stock request and response models."""
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import ChangeQuantity, Count, Id, PageQuery, QueryBool, RequestBody, ResponseModel, optional_text
from schemas.log import LogOut
from schemas.product import Location

Reason = optional_text(255)
Operator = optional_text(100)

STOCK_SORTS = ("product_id", "name", "sku", "quantity", "min_quantity", "updated_at")
StockSort = Literal[STOCK_SORTS + tuple(f"-{key}" for key in STOCK_SORTS)]


class StockChange(RequestBody):
    """`add` and `reduce`: move `quantity` units in or out."""

    product_id: Id
    quantity: ChangeQuantity
    reason: Reason = None
    operator: Operator = None


class StockAdjust(RequestBody):
    """A stocktake: `quantity` is the counted absolute level."""

    product_id: Id
    quantity: Count
    min_quantity: Count = None
    max_quantity: Count | None = None
    location: Location = None
    reason: Reason = None
    operator: Operator = None


class StockQuery(PageQuery):
    q: str | None = Field(None, max_length=100)
    category: str | None = Field(None, max_length=100)
    location: str | None = Field(None, max_length=100)
    low_only: QueryBool = False
    sort: StockSort = "product_id"


class ProductSummaryOut(ResponseModel):
    id: int
    name: str
    sku: str
    category: str | None


class StockOut(ResponseModel):
    product_id: int
    quantity: int
    min_quantity: int
    max_quantity: int | None
    location: str | None
    is_low: bool
    updated_at: datetime
    product: ProductSummaryOut


class StockChangeOut(ResponseModel):
    stock: StockOut
    log: LogOut | None
