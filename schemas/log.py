"""Movement log query and response models."""
from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import DateOrDateTime, PageQuery, QueryId, QueryModel, ResponseModel

Action = Literal["in", "out", "adjust"]


class LogQuery(PageQuery):
    product_id: QueryId | None = None
    action: Action | None = None
    operator: str | None = Field(None, max_length=100)
    start_date: DateOrDateTime | None = None
    end_date: DateOrDateTime | None = None


class StatisticsQuery(QueryModel):
    product_id: QueryId | None = None
    start_date: DateOrDateTime | None = None
    end_date: DateOrDateTime | None = None


class LogOut(ResponseModel):
    id: int | None  # null in a dry run: the row was never kept
    product_id: int
    seq: int
    action: Action
    quantity: int
    before_quantity: int
    after_quantity: int
    reason: str | None
    operator: str | None
    sku: str
    name: str = Field(validation_alias="product_name")
    created_at: datetime
    prev_hash: str
    hash: str


class VerifyQuery(QueryModel):
    product_id: QueryId | None = None

