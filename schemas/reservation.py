"""Reservation request and response models."""
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import (
    ChangeQuantity,
    Id,
    PageQuery,
    QueryId,
    RequestBody,
    ResponseModel,
    filter_text,
    optional_text,
    whole_number,
)

MAX_TTL = 30 * 24 * 3600  # 2,592,000 seconds
Status = Literal["active", "fulfilled", "released", "expired"]
Reference = optional_text(128)
Seconds = whole_number(1, MAX_TTL)


class Hold(RequestBody):
    """Units of one level to hold for an order or cart; no warehouse: the default one."""

    product_id: Id
    quantity: ChangeQuantity
    warehouse_id: Id | None = None
    reference: Reference = None
    expires_in: Seconds | None = Field(None, description="Seconds the hold lasts (default RESERVATION_TTL_SECONDS, 900)")
    operator: optional_text(100) = None


class BatchReserve(Hold):
    action: Literal["reserve"]


class Fulfil(RequestBody):
    quantity: ChangeQuantity | None = Field(None, description="Units shipped (default: all it holds)")
    reason: optional_text(255) = None
    operator: optional_text(100) = None


class Extend(RequestBody):
    expires_in: Seconds = Field(description="Seconds from now the hold lasts")


class ReservationQuery(PageQuery):
    status: Status | None = Field(None, examples=["active"])
    product_id: QueryId | None = Field(None, examples=[1])
    warehouse_id: QueryId | None = Field(None, examples=[1])
    reference: filter_text(128) = Field(None, examples=["订单-20261204-001"])


class ReservationOut(ResponseModel):
    id: int | None  # null in a dry run: the row was never kept
    product_id: int
    warehouse_id: int
    quantity: int = Field(description="Units it holds (0 once fulfilled)")
    fulfilled_quantity: int
    reference: str | None
    status: Status
    operator: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
