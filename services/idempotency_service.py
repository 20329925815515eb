"""Exactly-once writes: a change made with an `Idempotency-Key` and its response
commit together, so a retry finds the response and never makes the change twice."""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from db import db
from models import IdempotencyRecord
from models.types import utcnow
from services.transaction import run_in_write_transaction
from utils.exceptions import Conflict, IdempotencyKeyReused


@dataclass(frozen=True)
class Outcome:
    """A response as it is stored and replayed."""

    status_code: int
    body: str
    location: str | None = None
    etag: str | None = None


class _KeyTaken(Exception):
    """Another request with the same key committed first."""


def _expiry_cutoff():
    return utcnow() - timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])


def _find(scope: str, key: str) -> IdempotencyRecord | None:
    return db.session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at >= _expiry_cutoff(),
        )
    )


def _replay(record: IdempotencyRecord, fingerprint: str) -> Outcome:
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(details={"idempotency_key": record.key})
    return Outcome(record.status_code, record.body, record.location, record.etag)


def run_once(scope: str, key: str, fingerprint: str, produce: Callable[[], Outcome]) -> tuple[Outcome, bool]:
    """The stored outcome for this key, or `produce()` run and stored with it in one
    transaction. Returns (outcome, replayed).

    A second request with the same key while the first is still running waits on
    the first's uncommitted key row (a unique index), then replays its response.
    A request that fails changes nothing and stores nothing, so it may be retried.
    """
    existing = _find(scope, key)
    if existing is not None:
        return _replay(existing, fingerprint), True

    def work() -> Outcome:
        db.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at < _expiry_cutoff(),
            )
        )
        record = IdempotencyRecord(scope=scope, key=key, fingerprint=fingerprint, status_code=0, body="")
        db.session.add(record)
        try:
            db.session.flush()
        except IntegrityError:
            raise _KeyTaken() from None
        outcome = produce()
        record.status_code, record.body = outcome.status_code, outcome.body
        record.location, record.etag = outcome.location, outcome.etag
        return outcome

    try:
        return run_in_write_transaction(work), False
    except _KeyTaken:
        winner = _find(scope, key)
        if winner is None:
            raise Conflict("相同 Idempotency-Key 的请求正在处理中", {"idempotency_key": key}) from None
        return _replay(winner, fingerprint), True


def prune() -> int:
    """Delete records older than the retention period; returns how many."""
    result = db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < _expiry_cutoff()))
    db.session.commit()
    return result.rowcount
