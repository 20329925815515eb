"""The change feed: events written in their change's transaction, sequenced in commit
order, read by cursor. docs/events.md explains why a plain id cursor would skip."""
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db import db
from db.prepared import PreparedStatement
from models import Event, EventSequencer
from models.types import utcnow
from services.transaction import run_in_write_transaction, write_connection
from utils.exceptions import ValidationFailed

SEQUENCE_BATCH = 1000  # events given positions per turn of the sequencer
SEQUENCER_ROW = 1

_INSERT_EVENT = PreparedStatement(insert(Event).values(
    type=bindparam("type"), occurred_at=bindparam("occurred_at"), product_id=bindparam("product_id"),
    warehouse_id=bindparam("warehouse_id"), data=bindparam("data")))


def record_event(event_type: str, data: dict[str, Any], *, product_id: int | None = None,
                 warehouse_id: int | None = None, occurred_at: datetime | None = None) -> None:
    """Append an event to the outbox, in the caller's open write transaction: it commits
    with the change that caused it, or not at all. `data` holds JSON values and UTC
    datetimes (written as the API writes them, `…Z`)."""
    _INSERT_EVENT.run(write_connection(),
                      **_event_row(event_type, data, product_id, warehouse_id, occurred_at))


class EventBatch:
    """Events of one bulk change (an import), appended to the outbox together at `write`:
    one multi-row INSERT instead of a round trip per event. `add` takes what
    `record_event` takes."""

    def __init__(self):
        self.rows: list[dict[str, Any]] = []

    def add(self, event_type: str, data: dict[str, Any], *, product_id: int | None = None,
            warehouse_id: int | None = None, occurred_at: datetime | None = None) -> None:
        self.rows.append(_event_row(event_type, data, product_id, warehouse_id, occurred_at))

    def write(self) -> None:
        if self.rows:
            db.session.connection().execute(insert(Event), self.rows)
            self.rows.clear()


def _event_row(event_type: str, data: dict[str, Any], product_id: int | None, warehouse_id: int | None,
               occurred_at: datetime | None) -> dict[str, Any]:
    return {"type": event_type, "occurred_at": occurred_at or utcnow(), "product_id": product_id,
            "warehouse_id": warehouse_id, "data": orjson.dumps(data, option=orjson.OPT_UTC_Z).decode()}


def _unsequenced_ids(limit: int) -> list[int]:
    """Ids of committed events without a position, oldest first. A plain (non-locking)
    read: rows of transactions still open are invisible to it and wait for a later turn."""
    return list(db.session.scalars(
        select(Event.id).where(Event.position.is_(None)).order_by(Event.id).limit(limit)))


def sequence() -> int:
    """Give the committed events that have none the next positions, in id order, and
    answer how many. Sequencers take turns on the sequencer row's lock and look for
    events only once they hold it, so every position handed out is above every
    position committed before, and all of one turn's become visible at once."""
    if not _unsequenced_ids(1):  # one index probe when idle
        return 0

    def work() -> int:
        last = db.session.scalar(
            select(EventSequencer.last_position).where(EventSequencer.id == SEQUENCER_ROW).with_for_update())
        if last is None:
            return -1
        ids = _unsequenced_ids(SEQUENCE_BATCH)
        if ids:
            db.session.execute(update(Event).execution_options(synchronize_session=False),
                               [{"id": event_id, "position": last + offset} for offset, event_id in enumerate(ids, 1)])
            db.session.execute(update(EventSequencer).where(EventSequencer.id == SEQUENCER_ROW)
                               .values(last_position=last + len(ids)))
        return len(ids)

    done = run_in_write_transaction(work)
    if done == -1:
        _create_sequencer()
        done = run_in_write_transaction(work)
    return done


def _create_sequencer() -> None:
    """The sequencer row, made on first use (after any sequenced events: a restored table)."""
    try:
        run_in_write_transaction(lambda: db.session.execute(insert(EventSequencer).values(
            id=SEQUENCER_ROW, last_position=select(func.coalesce(func.max(Event.position), 0)).scalar_subquery())))
    except IntegrityError:
        db.session.rollback()  # another process made it first


def shown(row) -> dict[str, Any]:
    """An event as the feed and the webhooks show it."""
    return {"id": row.id, "position": row.position, "type": row.type, "occurred_at": row.occurred_at,
            "product_id": row.product_id, "warehouse_id": row.warehouse_id, "data": orjson.loads(row.data)}


def read_feed(after: int, limit: int) -> dict[str, Any]:
    """Events past position `after`, in feed order, after sequencing what has committed.
    `next_after` is the last one's position (`after` itself when none follow yet)."""
    while sequence() == SEQUENCE_BATCH:
        pass
    rows = db.session.execute(
        select(Event).where(Event.position > after).order_by(Event.position).limit(limit)).scalars().all()
    if not rows and after > (last := last_position()):
        # No answer ever gave this cursor: one kept across a restored or replaced database
        # would otherwise wait, silently, for the feed to grow past it.
        raise ValidationFailed("游标超出事件流末尾：请从 last_position 或 0 重新开始",
                               {"after": after, "last_position": last})
    items = [shown(row) for row in rows]
    return {"items": items, "next_after": items[-1]["position"] if items else after}


def events_after(after: int, limit: int) -> list[Event]:
    """Sequenced events past position `after`, in feed order (for the webhook fan-out)."""
    return list(db.session.scalars(select(Event).where(Event.position > after).order_by(Event.position).limit(limit)))


def last_position() -> int:
    return db.session.scalar(select(func.coalesce(func.max(Event.position), 0)))
