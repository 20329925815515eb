"""Change feed and webhook request and response models."""
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

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


def _known_selection(events: list[str]) -> list[str]:
    if "*" in events and len(events) > 1:
        raise ValueError("\"*\" 须单独使用")
    return list(dict.fromkeys(events))


def _webhook_url(url: str) -> str:
    """An http(s) URL with a host; where it points is checked against WEBHOOK_BLOCK_PRIVATE
    by the service, which knows the setting."""
    from urllib.parse import urlsplit

    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("必须是 http:// 或 https:// 开头、带主机名的 URL")
    if parts.username or parts.password:
        raise ValueError("URL 中不能包含用户名或密码")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise ValueError("端口无效") from None
    return url


WebhookUrl = Annotated[str, Field(min_length=1, max_length=2048, examples=["https://erp.example.com/hooks/inventory"]),
                       AfterValidator(_webhook_url)]
EventSelection = Annotated[list[EventType | Literal["*"]], Field(min_length=1, max_length=len(EVENT_TYPES) + 1),
                           AfterValidator(_known_selection)]


class WebhookCreate(RequestBody):
    url: WebhookUrl
    events: EventSelection = Field(examples=[["stock.changed", "stock.low"]])
    description: optional_text(255) = None


class WebhookUpdate(RequestBody):
    url: WebhookUrl | None = None
    events: EventSelection | None = None
    description: optional_text(255) = None
    is_active: bool | None = None


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
