"""Column types shared by the models."""
from datetime import datetime, timezone

from sqlalchemy import BigInteger, DateTime, Integer, String, text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (a callable default, not an import-time value)."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """UTC timestamps with microseconds, stored naive (DATETIME(6) on MySQL), read back aware."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None

    @property
    def python_type(self) -> type:
        return datetime


# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")

def exact_text(length: int) -> String:
    """Text compared byte for byte on MySQL too, as SQLite compares it: under the tables'
    collation "Food", "food" and "ＦＯＯＤ" would be one SKU, category, location or operator."""
    return String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql")


Code = exact_text(64)  # SKUs
Label = exact_text(100)  # categories, locations, operators: filtered and counted by exact value

MYSQL_TABLE_ARGS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}

# The rows a list shows: an index of a list's sort leads with `deleted_at` (MariaDB
# walks the live rows' end of it) and is partial on SQLite (services/pagination.py).
LIVE = text("deleted_at IS NULL")
