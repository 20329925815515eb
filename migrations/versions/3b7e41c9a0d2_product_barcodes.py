"""product barcodes

An optional code a scanner reads, unique among live products (a deleted product's is
cleared, as its SKU is), so a scan finds at most one product by index.

Revision ID: 3b7e41c9a0d2
Revises: 3ba34ac8e02f
Create Date: 2026-12-04 15:10:00.000000

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '3b7e41c9a0d2'
down_revision = '3ba34ac8e02f'
branch_labels = None
depends_on = None


def upgrade():
    # A column and a unique index, no constraint: SQLite adds both in place, where a
    # constraint would rebuild the table that stock and stock_logs refer to.
    op.add_column('products', sa.Column(
        'barcode', sa.String(length=64).with_variant(mysql.VARCHAR(collation='utf8mb4_bin', length=64), 'mysql'),
        nullable=True))
    op.create_index('ix_products_barcode', 'products', ['barcode'], unique=True)


def downgrade():
    op.drop_index('ix_products_barcode', table_name='products')
    op.drop_column('products', 'barcode')
