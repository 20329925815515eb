"""Warehouses (仓库): the places a product's stock sits in. Soft-deleted like products,
so the ledger rows that name one keep pointing at it."""
from datetime import datetime

from sqlalchemy import Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from db import db
from models.types import MYSQL_TABLE_ARGS, Code, UTCDateTime, utcnow

DEFAULT_WAREHOUSE = {"code": "DEFAULT", "name": "默认仓库"}


class Warehouse(db.Model):
    __tablename__ = "warehouses"
    __table_args__ = (
        # True on the default warehouse and NULL (not False) on every other: the unique
        # index then lets the database itself hold the rule "one default at most".
        Index("ix_warehouses_is_default", "is_default", unique=True),
        Index("ix_warehouses_deleted_at", "deleted_at"),
        MYSQL_TABLE_ARGS,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL once deleted: the code is released for a new warehouse; ledger rows keep their copy.
    code: Mapped[str | None] = mapped_column(Code, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(255))
    is_default: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
