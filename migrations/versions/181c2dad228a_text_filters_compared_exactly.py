"""categories, locations and operators compared exactly on MySQL

Under the tables' case- and width-insensitive collation, "Food", "food" and "ＦＯＯＤ"
were one category (one count, one filter) on MySQL and three on SQLite; the same held
for the stock list's location filter and the movement log's operator filter. The
columns now compare byte for byte, and the counts per category are taken again from
the live products, so categories that were counted together are counted apart. SQLite
compares text exactly already: nothing changes there.

Revision ID: 181c2dad228a
Revises: dd98d27733ea
Create Date: 2026-11-25 15:25:13.267260

"""
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '181c2dad228a'
down_revision = 'dd98d27733ea'
branch_labels = None
depends_on = None

# (table, column, nullable)
COLUMNS = (("products", "category", True), ("product_counts", "category", False), ("stock", "location", True),
           ("stock_logs", "operator", True))
COUNT_LIVE_PRODUCTS = """
    INSERT INTO product_counts (category, live)
    SELECT COALESCE(category, ''), COUNT(*) FROM products WHERE deleted_at IS NULL GROUP BY COALESCE(category, '')
"""


def _collate(collation: str, before: str) -> None:
    # Emptied first: rows apart under one collation may be one key under the other.
    op.execute("DELETE FROM product_counts")
    for table, column, nullable in COLUMNS:
        op.alter_column(table, column, existing_type=mysql.VARCHAR(100, collation=before),
                        type_=mysql.VARCHAR(100, collation=collation), existing_nullable=nullable)
    op.execute(COUNT_LIVE_PRODUCTS)


def upgrade():
    if op.get_bind().dialect.name == "mysql":
        _collate("utf8mb4_bin", before="utf8mb4_unicode_ci")


def downgrade():
    if op.get_bind().dialect.name == "mysql":
        _collate("utf8mb4_unicode_ci", before="utf8mb4_bin")
