"""Movement log query and response models."""
from datetime import date, datetime
from typing import Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.common import (
    MAX_ID,
    DateOrDateTime,
    PageQuery,
    QueryId,
    QueryModel,
    ResponseModel,
    filter_text,
    no_page_number,
    paging_rule,
)

Action = Literal["in", "out", "adjust", "transfer_out", "transfer_in"]


class LedgerPageQuery(PageQuery):
    """A page of movements, newest first: by number, by cursor, or those older than
    `before_id` (the previous page's `next_before_id`, the same as `after` with its cursor)."""

    model_config = ConfigDict(json_schema_extra=paging_rule(
        ("after", "before", "before_id"),
        "`page`, or instead a cursor from an earlier page: `after` (its `pagination.next_after`), `before` (its "
        "`pagination.prev_before`) or `before_id` (its `pagination.next_before_id`), one at a time, with `page` 1 "
        "or none."))

    before_id: QueryId | None = Field(
        None, description="Only movements older than this id: the previous page's `pagination.next_before_id`")

    @field_validator("before_id")
    @classmethod
    def _before_id_alone(cls, before_id: int | None, info: ValidationInfo) -> int | None:
        return no_page_number(before_id, info, exclusive=("after", "before"))


class LogFilters(QueryModel):
    """Which movements: the filters of the log list and of its export."""

    product_id: QueryId | None = Field(None, examples=[1])
    action: Action | None = Field(None, examples=["in"])
    operator: filter_text(100) = Field(None, examples=["张三"])
    warehouse_id: QueryId | None = Field(None, examples=[1])
    transfer_id: str | None = Field(None, max_length=32, pattern="^[0-9a-f]{1,32}$",
                                    examples=["9f1c2d3e4b5a69788796a5b4c3d2e1f0"])
    start_date: DateOrDateTime | None = Field(None, examples=["2026-11-01"])
    end_date: DateOrDateTime | None = Field(None, examples=["2026-11-30"])


class LogQuery(LedgerPageQuery, LogFilters):
    pass


class StatisticsQuery(QueryModel):
    product_id: QueryId | None = Field(None, examples=[1])
    start_date: DateOrDateTime | None = Field(None, examples=["2026-11-01"])
    end_date: DateOrDateTime | None = Field(None, examples=["2026-11-30"])


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
    on_behalf_of: str | None
    sku: str
    name: str = Field(validation_alias="product_name")
    created_at: datetime
    prev_hash: str
    hash: str
    warehouse_id: int | None
    warehouse_code: str | None
    level_before: int | None
    level_after: int | None
    transfer_id: str | None
    reservation_id: int | None = Field(None, description="The reservation an `out` row fulfilled")


class VerifyQuery(QueryModel):
    """One product, or a page of the whole proof: products after `after`, or (once they are
    done) days after `after_day`. A client follows the answer's `next_after` or
    `next_after_day` until `complete`; at most one of the three is given."""

    model_config = ConfigDict(json_schema_extra={"x-parameter-group": "scope", "not": {"anyOf": [
        {"required": ["product_id", "after"]}, {"required": ["product_id", "after_day"]},
        {"required": ["after", "after_day"]}]}})

    product_id: QueryId | None = Field(None, examples=[1])
    after: int | None = Field(None, ge=0, le=MAX_ID, examples=[0],
                              description="Check the products whose id is above this: the previous page's `next_after`.")
    after_day: date | None = Field(None, examples=["2026-11-24"],
                                   description="Check the daily totals of the days after this: the previous page's "
                                               "`next_after_day`.")

    @model_validator(mode="after")
    def _one_scope(self):
        if sum(value is not None for value in (self.product_id, self.after, self.after_day)) > 1:
            raise ValueError("product_id、after 与 after_day 只能给一个")
        return self


class ActionOut(ResponseModel):
    value: Action
    label: str


class ActionTotals(ResponseModel):
    count: int
    quantity: int


class TopProductOut(ResponseModel):
    product_id: int
    name: str
    sku: str | None
    movements: int
    total_in: int
    total_out: int
    units_moved: int


class DailyOut(ResponseModel):
    date: date
    in_: int = Field(serialization_alias="in", validation_alias="in")
    out: int
    adjust: int


class StatisticsOut(ResponseModel):
    total_logs: int
    total_in: int
    total_out: int
    net_change: int
    by_action: dict[Action, ActionTotals]
    top_products: list[TopProductOut]
    daily: list[DailyOut]


class ProblemOut(ResponseModel):
    product_id: int
    seq: int
    problem: str


class VerifyOut(ResponseModel):
    """One page of the proof: what it checked and found. A whole walk sums the pages."""

    products_checked: int
    logs_checked: int
    problems: list[ProblemOut]
    problems_total: int
    next_after: int | None = Field(description="Pass as `after` for the next page (the products go on).")
    next_after_day: date | None = Field(description="Pass as `after_day` for the next page (the products are done, "
                                                    "the daily totals go on).")
    complete: bool = Field(description="True on the last page of the walk (both cursors null), and for one "
                                       "`product_id`.")
