"""Webhook secrets: made, kept encrypted at rest, and used to sign deliveries.

A receiver proves a delivery came from this service by recomputing the HMAC, so the
service must be able to read the secret back: it is stored encrypted (Fernet: AES-128-CBC
and HMAC-SHA256) under a key derived from WEBHOOK_SECRET_KEY, else SECRET_KEY. A copy of
the database alone does not reveal any secret.
"""
import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet
from flask import current_app

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _fernet() -> Fernet:
    material = current_app.config["WEBHOOK_SECRET_KEY"] or current_app.config["SECRET_KEY"]
    digest = hashlib.sha256(b"inventory webhook secrets\0" + material.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode("utf-8")).decode("ascii")


def unseal(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode("ascii")).decode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_header(signing_secrets: list[str], timestamp: int, body: bytes) -> str:
    """One signature per secret, the current one first, joined by ", " (during a
    rotation's grace period there are two; a receiver accepts any one it can verify)."""
    return ", ".join(signature(secret, timestamp, body) for secret in signing_secrets)
