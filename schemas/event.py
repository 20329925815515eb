"""Change feed and webhook request and response models."""
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from models import DELIVERY_STATUSES, EVENT_TYPES
from schemas.common import MAX_ID, PageQuery, QueryModel, RequestBody, ResponseModel, optional_text, whole_number

EventType = Literal[EVENT_TYPES]
FEED_LIMIT = 500


class EventQuery(QueryModel):
    after: int = Field(0, ge=0, le=MAX_ID, examples=[0],
                       description="The feed position read so far: 0 at first, then the previous answer's `next_after`")
    limit: int = Field(100, ge=1, le=FEED_LIMIT, examples=[100])


class EventOut(ResponseModel):
    id: int
    position: int = Field(description="The event's place in the feed: a reader may resume with `after` = this")
    type: EventType
    occurred_at: datetime
    product_id: int | None
    warehouse_id: int | None
    data: dict[str, Any]


class FeedOut(ResponseModel):
    items: list[EventOut]
    next_after: int = Field(description="Pass as `after` for what follows (the same `after` when nothing did yet)")


def _one_selection(events: list[str]) -> list[str]:
    """Each type once; `*` (every type) stands for the whole selection."""
    return ["*"] if "*" in events else list(dict.fromkeys(events))


# http(s), a host name or IPv4 address (IDN hosts as punycode), an optional port of
# 1..65535, then path and query in visible ASCII (percent-encode the rest); no user or
# password. The document states the same pattern, so whatever it allows is accepted.
PORT = "(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
URL_PATTERN = f"^https?://[A-Za-z0-9._~-]+(?::{PORT})?(?:[/?#][!-~]*)?$"

WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048, pattern=URL_PATTERN,
                                  examples=["https://erp.example.com/hooks/inventory"])]
EventSelection = Annotated[list[EventType | Literal["*"]], Field(min_length=1, max_length=len(EVENT_TYPES) + 1),
                           AfterValidator(_one_selection)]


class WebhookCreate(RequestBody):
    url: WebhookUrl
    events: EventSelection = Field(examples=[["stock.changed", "stock.low"]])
    description: optional_text(255) = None


class WebhookUpdate(RequestBody):
    """Only the fields sent change; at least one."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    url: WebhookUrl = None
    events: EventSelection = None
    description: optional_text(255) = None
    is_active: bool = None

    @model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_fields_set:
            raise ValueError("至少提供一个要修改的字段")
        return self


class SecretRotation(RequestBody):
    grace_seconds: whole_number(0, 7 * 24 * 3600) = Field(
        86400, description="How long the old secret keeps signing beside the new one (default one day)")


class WebhookOut(ResponseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    previous_secret_until: datetime | None = Field(
        description="Until then deliveries carry a second signature, made with the secret before the last rotation")
    created_at: datetime
    updated_at: datetime


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="The signing secret: shown this once, keep it")


class DeliveryQuery(PageQuery):
    status: Literal[DELIVERY_STATUSES] | None = Field(None, examples=["failed"])


class DeliveryOut(ResponseModel):
    id: int
    uid: str = Field(description="`X-Inventory-Delivery`: the same on every attempt")
    webhook_id: int
    event_id: int | None
    event_type: str
    product_id: int | None
    status: Literal[DELIVERY_STATUSES]
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
