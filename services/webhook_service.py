"""Webhook use cases: registration and secrets, turning feed events into deliveries,
and handing deliveries to workers without two ever sending one at the same time."""
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from urllib.parse import urlsplit

import orjson
from flask import current_app
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import aliased

from db import db
from models import Webhook, WebhookDelivery, WebhookWorker
from models.types import utcnow
from schemas.common import PageQuery
from schemas.event import DeliveryQuery, EventOut, SecretRotation, WebhookCreate, WebhookUpdate
from services import event_service, webhook_sender, webhook_signing
from services.pagination import Ordering, paginate
from services.transaction import run_in_write_transaction
from utils.exceptions import NotFound, ValidationFailed
from utils.pagination import Page

FAN_OUT_BATCH = 500
OLDEST_FIRST = Ordering("id", (Webhook.id.asc(),))
NEWEST_FIRST = Ordering("-id", (WebhookDelivery.id.desc(),))
LEASE_MARGIN = 60  # seconds a lease outlasts the send's timeout, for the result to be written


def shown(webhook: Webhook) -> SimpleNamespace:
    """A webhook as answered: its selection parsed, never its secrets."""
    fields = {column.key: getattr(webhook, column.key) for column in Webhook.__table__.columns}
    return SimpleNamespace(**{**fields, "events": json.loads(webhook.events)})


def _check_destination(url: str) -> None:
    """With WEBHOOK_BLOCK_PRIVATE, refuse a URL whose host is (or resolves to) a private
    or loopback address; the worker checks again at each send, at the address it uses."""
    if not current_app.config["WEBHOOK_BLOCK_PRIVATE"]:
        return
    parts = urlsplit(url)
    try:
        webhook_sender.checked_address(parts.hostname, parts.port or 443, block_private=True)
    except webhook_sender.BlockedAddress as exc:
        raise ValidationFailed("不允许内网或回环地址（WEBHOOK_BLOCK_PRIVATE=true）", {"url": str(exc)}) from None
    except OSError:
        raise ValidationFailed("URL 的主机名无法解析", {"url": parts.hostname}) from None


def create_webhook(data: WebhookCreate) -> SimpleNamespace:
    """Register a webhook; it gets the events from now on. The answer carries the secret, once."""
    _check_destination(data.url)
    event_service.sequence()
    secret = webhook_signing.new_secret()

    def work() -> Webhook:
        webhook = Webhook(url=data.url, events=json.dumps(data.events), description=data.description,
                          secret=webhook_signing.seal(secret), fanned_out_to=event_service.last_position())
        db.session.add(webhook)
        db.session.flush()
        return webhook

    answer = shown(run_in_write_transaction(work))
    answer.secret = secret
    return answer


def list_webhooks(query: PageQuery) -> Page:
    page = paginate(select(Webhook), query, OLDEST_FIRST, select(Webhook.__table__))
    for item in page.items:
        item.events = json.loads(item.events)
    return page


def _webhook(webhook_id: int, lock: bool = False) -> Webhook:
    statement = select(Webhook).where(Webhook.id == webhook_id)
    webhook = db.session.scalar(statement.with_for_update() if lock else statement)
    if webhook is None:
        raise NotFound("Webhook 不存在", {"webhook_id": webhook_id})
    return webhook


def get_webhook(webhook_id: int) -> SimpleNamespace:
    return shown(_webhook(webhook_id))


def update_webhook(webhook_id: int, data: WebhookUpdate) -> SimpleNamespace:
    changes = data.model_dump(exclude_unset=True)
    if "url" in changes:
        _check_destination(changes["url"])

    def work() -> Webhook:
        webhook = _webhook(webhook_id, lock=True)
        for field, value in changes.items():
            setattr(webhook, field, json.dumps(value) if field == "events" else value)
        webhook.updated_at = utcnow()
        return webhook

    return shown(run_in_write_transaction(work))


def delete_webhook(webhook_id: int) -> None:
    """The webhook and its delivery history go; nothing more is sent to it."""

    def work() -> None:
        _webhook(webhook_id, lock=True)
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id))
        db.session.execute(delete(Webhook).where(Webhook.id == webhook_id))

    run_in_write_transaction(work)


def rotate_secret(webhook_id: int, rotation: SecretRotation) -> SimpleNamespace:
    """A new secret signs from now on; the current one keeps signing beside it for the
    grace period, so receivers can switch without missing a delivery."""
    secret = webhook_signing.new_secret()

    def work() -> Webhook:
        webhook = _webhook(webhook_id, lock=True)
        now = utcnow()
        if rotation.grace_seconds:
            webhook.previous_secret = webhook.secret
            webhook.previous_secret_until = now + timedelta(seconds=rotation.grace_seconds)
        else:
            webhook.previous_secret = webhook.previous_secret_until = None
        webhook.secret = webhook_signing.seal(secret)
        webhook.updated_at = now
        return webhook

    answer = shown(run_in_write_transaction(work))
    answer.secret = secret
    return answer


def list_deliveries(webhook_id: int, query: DeliveryQuery) -> Page:
    _webhook(webhook_id)
    statement = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if query.status:
        statement = statement.where(WebhookDelivery.status == query.status)
    return paginate(statement, query, NEWEST_FIRST, select(WebhookDelivery.__table__))


def _new_delivery(webhook_id: int, event_type: str, body: dict, event_id: int | None = None,
                  product_id: int | None = None) -> WebhookDelivery:
    delivery = WebhookDelivery(uid=str(uuid.uuid4()), webhook_id=webhook_id, event_id=event_id, event_type=event_type,
                               product_id=product_id, body=orjson.dumps(body).decode(), status="pending",
                               attempts=0, next_attempt_at=utcnow())
    db.session.add(delivery)
    return delivery


def send_test(webhook_id: int) -> WebhookDelivery:
    """Queue a `ping` delivery (not a feed event), sent and signed like any other."""

    def work() -> WebhookDelivery:
        webhook = _webhook(webhook_id)
        body = {"id": None, "type": "ping", "occurred_at": utcnow().isoformat().replace("+00:00", "Z"),
                "product_id": None, "warehouse_id": None, "data": {"webhook_id": webhook.id, "url": webhook.url}}
        delivery = _new_delivery(webhook.id, "ping", body)
        db.session.flush()
        return delivery

    return run_in_write_transaction(work)


# ---- the worker's side ----

def fan_out() -> int:
    """Sequence the feed, then turn each active webhook's new events into deliveries, in
    feed order. A webhook is locked while its cursor moves (SKIP LOCKED: a second
    worker passes on to the others), so no event becomes two deliveries."""
    while event_service.sequence() == event_service.SEQUENCE_BATCH:
        pass
    made, latest = 0, event_service.last_position()
    behind = select(Webhook.id).where(Webhook.is_active.is_(True), Webhook.fanned_out_to < latest)
    for webhook_id in db.session.scalars(behind).all():
        made += run_in_write_transaction(lambda webhook_id=webhook_id: _fan_out_one(webhook_id))
    return made


def _fan_out_one(webhook_id: int) -> int:
    webhook = db.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.is_active.is_(True))
                                .with_for_update(skip_locked=True))
    if webhook is None:
        return 0
    wanted = set(json.loads(webhook.events))
    events = event_service.events_after(webhook.fanned_out_to, FAN_OUT_BATCH)
    made = 0
    for event in events:
        if "*" in wanted or event.type in wanted:
            body = EventOut.model_validate(event_service.shown(event)).model_dump(mode="json")
            _new_delivery(webhook.id, event.type, body, event.id, event.product_id)
            made += 1
    if events:
        webhook.fanned_out_to = events[-1].position
    return made


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds the lease of, with what it needs to send it."""

    id: int
    uid: str
    webhook_id: int
    event_type: str
    body: bytes
    url: str
    secrets: list[str]
    owner: str


def claim(limit: int, busy: dict[int, int], per_webhook: int) -> list[Claimed]:
    """Lease up to `limit` due deliveries, each the earliest pending one of its webhook
    and product (so one product's events go out in order, and a failing one holds back
    only the later ones of its own webhook and product). Rows another worker is claiming
    are skipped (SKIP LOCKED on MariaDB; SQLite's write lock serialises claims), and the
    lease keeps them from everyone else while they are sent, outside any transaction.
    `busy` counts this worker's sends per webhook: a slow receiver gets at most
    `per_webhook` of them, never all."""
    owner = str(uuid.uuid4())
    timeout = current_app.config["WEBHOOK_TIMEOUT"]

    def due(now) -> tuple:
        return (WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                (WebhookDelivery.leased_until.is_(None)) | (WebhookDelivery.leased_until < now))

    if not db.session.scalar(select(exists().where(*due(utcnow())))):
        return []  # a read when idle: no write transaction (on SQLite, no write lock) each round

    def work() -> list[Claimed]:
        now = utcnow()
        earlier = aliased(WebhookDelivery)
        active = select(Webhook.id).where(Webhook.is_active.is_(True))
        statement = (
            select(WebhookDelivery)
            .where(*due(now), WebhookDelivery.webhook_id.in_(active),
                   ~exists().where(earlier.webhook_id == WebhookDelivery.webhook_id,
                                   earlier.product_id == WebhookDelivery.product_id,
                                   earlier.status == "pending", earlier.id < WebhookDelivery.id))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit * 4)
            .with_for_update(skip_locked=True)  # the deliveries' rows only: subqueries lock nothing
        )
        taken, per, webhooks = [], dict(busy), {}
        for delivery in db.session.scalars(statement).all():
            if len(taken) == limit or per.get(delivery.webhook_id, 0) >= per_webhook:
                continue
            per[delivery.webhook_id] = per.get(delivery.webhook_id, 0) + 1
            if delivery.webhook_id not in webhooks:
                webhooks[delivery.webhook_id] = db.session.get(Webhook, delivery.webhook_id)
            webhook = webhooks[delivery.webhook_id]
            delivery.leased_until = now + timedelta(seconds=timeout + LEASE_MARGIN)
            delivery.lease_owner = owner
            delivery.attempts += 1
            taken.append(Claimed(delivery.id, delivery.uid, webhook.id, delivery.event_type,
                                 delivery.body.encode("utf-8"), webhook.url, _signing_secrets(webhook, now), owner))
        return taken

    return run_in_write_transaction(work)


def _signing_secrets(webhook: Webhook, now) -> list[str]:
    signing = [webhook_signing.unseal(webhook.secret)]
    if webhook.previous_secret and webhook.previous_secret_until and webhook.previous_secret_until > now:
        signing.append(webhook_signing.unseal(webhook.previous_secret))
    return signing


def retry_delay(attempts: int) -> float:
    """§10's backoff: WEBHOOK_RETRY_BASE seconds after the first attempt, doubling after each next one."""
    return current_app.config["WEBHOOK_RETRY_BASE"] * 2 ** (attempts - 1)


def record_outcome(claimed: Claimed, outcome: webhook_sender.Outcome) -> None:
    """Write a send's result, only while the lease is still this worker's: delivered,
    due again after the backoff, or `failed` after WEBHOOK_MAX_ATTEMPTS."""

    def work() -> None:
        delivery = db.session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.id == claimed.id, WebhookDelivery.lease_owner == claimed.owner).with_for_update())
        if delivery is None:
            return  # the lease ran out and another worker took the delivery over
        now = utcnow()
        delivery.leased_until = delivery.lease_owner = None
        delivery.last_status_code, delivery.last_error = outcome.status_code, outcome.error
        if outcome.delivered:
            delivery.status, delivery.delivered_at = "delivered", now
        elif delivery.attempts >= current_app.config["WEBHOOK_MAX_ATTEMPTS"]:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts))

    run_in_write_transaction(work)


def worker_seen(name: str) -> None:
    """A worker finished a round: its heartbeat (rows of workers gone a day are dropped)."""

    def work() -> None:
        now = utcnow()
        if db.session.execute(update(WebhookWorker).where(WebhookWorker.name == name).values(seen_at=now)).rowcount == 0:
            db.session.add(WebhookWorker(name=name, seen_at=now))
        db.session.execute(delete(WebhookWorker).where(WebhookWorker.seen_at < now - timedelta(days=1)))

    run_in_write_transaction(work)


def backlog() -> dict[str, float | None]:
    """Pending and failed deliveries, the age in seconds of the oldest pending one, and
    how long ago a worker last finished a round (None: no worker ever ran)."""
    counts = dict(db.session.execute(
        select(WebhookDelivery.status, func.count()).where(WebhookDelivery.status != "delivered")
        .group_by(WebhookDelivery.status)).all())
    now = utcnow()
    oldest = db.session.scalar(select(func.min(WebhookDelivery.created_at)).where(WebhookDelivery.status == "pending"))
    seen = db.session.scalar(select(func.max(WebhookWorker.seen_at)))
    return {"pending": counts.get("pending", 0), "failed": counts.get("failed", 0),
            "oldest_pending_seconds": (now - oldest).total_seconds() if oldest else 0.0,
            "worker_seen_seconds": (now - seen).total_seconds() if seen else None}
