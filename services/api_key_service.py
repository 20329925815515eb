"""API key use cases: issue, list, revoke, and recognise a presented key."""
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select

from db import db
from db.reads import PreparedRead
from models import ROLES, ApiKey
from models.types import utcnow
from utils.exceptions import NotFound, ValidationFailed

TOKEN_PREFIX = "inv_"  # marks the string as this service's key (secret scanners, humans)
SHOWN_CHARS = len(TOKEN_PREFIX) + 8


@dataclass(frozen=True)
class Caller:
    """Who a request runs as: what the rest of the request needs, never the key itself."""

    key_id: int
    name: str
    role: str

    def has_role(self, minimum: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(minimum)


def digest(token: str) -> str:
    """What is stored of a secret token: its hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_key(name: str, role: str) -> tuple[ApiKey, str]:
    """A new key for `name` with `role`; returns the row and the key, which is shown
    this once and never stored."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValidationFailed(details={"name": "1–100 个字符"})
    if role not in ROLES:
        raise ValidationFailed(details={"role": f"必须是 {', '.join(ROLES)} 之一"})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 random bits
    key = ApiKey(name=name, role=role, prefix=token[:SHOWN_CHARS], key_hash=digest(token))
    db.session.add(key)
    db.session.commit()
    return key, token


def list_keys(include_revoked: bool = False) -> list[ApiKey]:
    statement = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    return list(db.session.scalars(statement))


def revoke_key(key_id: int) -> ApiKey:
    """Revoke a key at once: the next request made with it is refused."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound("API 密钥不存在", {"id": key_id})
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.commit()
    return key


def authenticate(token: str) -> Caller | None:
    """The caller a presented key belongs to; None for an unknown or revoked key."""
    return _caller(_LIVE_KEY_BY_HASH.first(key_hash=digest(token)))


def _caller(row: dict | None) -> Caller | None:
    return Caller(row["id"], row["name"], row["role"]) if row else None


# Every authenticated request looks its key up. Prepared reads run outside the
# request's session, so identifying the caller opens no transaction: the request's
# own reads (a list page and its total, say) still start their snapshot themselves.
_LIVE_KEYS = select(ApiKey.id, ApiKey.name, ApiKey.role).where(ApiKey.revoked_at.is_(None))
_LIVE_KEY_BY_HASH = PreparedRead(_LIVE_KEYS.where(ApiKey.key_hash == bindparam("key_hash")))
