"""Stock request and response models."""
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from schemas.common import (
    ChangeQuantity,
    Count,
    DateOrDateTime,
    HeldOut,
    Id,
    PageQuery,
    QueryBool,
    QueryId,
    QueryModel,
    RequestBody,
    ResponseModel,
    StockLevel,
    filter_text,
    optional_text,
)
from schemas.log import LogOut
from schemas.product import Location, max_not_below_min
from schemas.reservation import Hold, ReservationOut
from schemas.warehouse import LevelOut

Reason = optional_text(255)
Operator = optional_text(100)
MAX_BATCH = 100

STOCK_SORTS = ("product_id", "name", "sku", "quantity", "min_quantity", "updated_at")
StockSort = Literal[STOCK_SORTS + tuple(f"-{key}" for key in STOCK_SORTS)]


class Movement(RequestBody):
    """What every change carries: who, why, and optionally the count it expects to find."""

    product_id: Id
    reason: Reason = None
    operator: Operator = None
    # Compare-and-set: the change applies only while the level's count equals this.
    expected_quantity: StockLevel | None = None


class LevelMovement(Movement):
    """A change of one warehouse's level; none named: the default warehouse."""

    warehouse_id: Id | None = None


class StockChange(LevelMovement):
    """`add` and `reduce`: move `quantity` units in or out."""

    quantity: ChangeQuantity


class StockAdjust(LevelMovement):
    """A stocktake: `quantity` is the counted absolute level. With `warehouse_id`, the
    thresholds and bin are the level's own; without, the product's (for its total)."""

    quantity: Count
    min_quantity: Count = None
    max_quantity: Count | None = None
    location: Location = None

    _thresholds_in_order = field_validator("max_quantity")(max_not_below_min)


class BatchAdd(StockChange):
    action: Literal["add"]


class BatchReduce(StockChange):
    action: Literal["reduce"]


class BatchAdjust(LevelMovement):
    action: Literal["adjust"]
    quantity: Count


class StockTransfer(Movement):
    """Move `quantity` units of a product from one warehouse to another (the same one
    twice is a 400); `expected_quantity` is the source level's."""

    from_warehouse_id: Id
    to_warehouse_id: Id
    quantity: ChangeQuantity

    @model_validator(mode="after")
    def _two_warehouses(self):
        if self.from_warehouse_id == self.to_warehouse_id:
            raise ValueError("调出与调入仓库不能相同")
        return self


class BatchTransfer(StockTransfer):
    action: Literal["transfer"]


class BatchReserve(Hold):
    """One line of an order: the batch's lines are held all together or not at all."""

    action: Literal["reserve"]


BatchItem = Annotated[BatchAdd | BatchReduce | BatchAdjust | BatchTransfer | BatchReserve,
                      Field(discriminator="action")]


class StockBatch(RequestBody):
    changes: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    dry_run: StrictBool = False


class StockQuery(PageQuery):
    q: filter_text(100) = Field(None, description="Part of the product's name or SKU", examples=["测试"])
    category: filter_text(100) = Field(None, examples=["测试"])
    location: filter_text(100) = Field(None, examples=["A区-01"])
    sku: filter_text(64) = Field(None, description="Exactly this SKU", examples=["TEST-001"])
    barcode: filter_text(64) = Field(None, description="Exactly this barcode", examples=["6901234567892"])
    low_only: QueryBool = False
    sort: StockSort = "product_id"


class LowStockQuery(PageQuery):
    warehouse_id: QueryId | None = Field(None, description="The low levels of this warehouse instead of low totals",
                                         examples=[1])


class StockPointQuery(QueryModel):
    """`as_of` (inclusive; a date means the end of that day) or `as_of_seq`, not both."""

    # The document carries the rule: both travel as one `point` parameter that forbids both.
    model_config = ConfigDict(json_schema_extra={"x-parameter-group": "point",
                                                 "not": {"required": ["as_of", "as_of_seq"]}})

    as_of: DateOrDateTime | None = Field(None, examples=["2026-11-24T21:30:00Z"])
    as_of_seq: int | None = Field(None, ge=0, le=2**62, examples=[1])
    warehouse_id: QueryId | None = Field(None, description="With `as_of`/`as_of_seq`: that warehouse's level",
                                         examples=[1])

    @model_validator(mode="after")
    def _one_point(self):
        if self.as_of is not None and self.as_of_seq is not None:
            raise ValueError("as_of 与 as_of_seq 只能给一个")
        return self


class ProductSummaryOut(ResponseModel):
    id: int
    name: str
    sku: str
    category: str | None


class StockOut(HeldOut):
    product_id: int
    min_quantity: int
    max_quantity: int | None
    location: str | None
    is_low: bool
    updated_at: datetime
    product: ProductSummaryOut


class ProductStockOut(StockOut):
    """A product's total and its level in each warehouse."""

    levels: list[LevelOut]


class WarehouseStockOut(LevelOut):
    """A level in one warehouse's list, with its product."""

    product_id: int
    updated_at: datetime
    product: ProductSummaryOut


class TransferOut(ResponseModel):
    transfer_id: str
    from_: LevelOut = Field(serialization_alias="from", validation_alias="from")
    to: LevelOut
    logs: list[LogOut]


class StockChangeOut(ResponseModel):
    stock: StockOut
    log: LogOut | None


class BatchTransferResultOut(StockChangeOut):
    """A batch's transfer: `log` is its transfer_out row, `transfer` the whole answer."""

    transfer: TransferOut


class BatchReserveResultOut(StockChangeOut):
    """A batch's reservation: it moves no stock (`log` is null)."""

    reservation: ReservationOut


class FulfilOut(ResponseModel):
    reservation: ReservationOut
    stock: StockOut
    log: LogOut


class BatchOut(ResponseModel):
    results: list[BatchTransferResultOut | BatchReserveResultOut | StockChangeOut]
    dry_run: bool


class StockPointOut(ResponseModel):
    product_id: int
    warehouse_id: int | None = None
    quantity: int
    as_of: datetime | date | None = None
    as_of_seq: int | None = None
    seq: int
    hash: str
