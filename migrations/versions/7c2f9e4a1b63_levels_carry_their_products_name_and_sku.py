"""levels carry their product's name and SKU

`stock_levels.name` and `.sku` are copies of the product's, filled here, and indexed
for a warehouse's live levels as the levels' own sorts are: a warehouse's page by name
or SKU walks one index, where a walk of the products' index looked up each one's level.

Revision ID: 7c2f9e4a1b63
Revises: 5a8e1c3d7b90
Create Date: 2026-12-05 03:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

import models.types

# revision identifiers, used by Alembic.
revision = '7c2f9e4a1b63'
down_revision = '5a8e1c3d7b90'
branch_labels = None
depends_on = None

COPIED = ("name", "sku")


def upgrade():
    op.add_column('stock_levels', sa.Column('name', sa.String(length=200), server_default='', nullable=False))
    op.add_column('stock_levels', sa.Column('sku', models.types.Code, nullable=True))
    op.execute("""
        UPDATE stock_levels SET
            name = (SELECT products.name FROM products WHERE products.id = stock_levels.product_id),
            sku = (SELECT products.sku FROM products WHERE products.id = stock_levels.product_id)
    """)
    for sort in COPIED:
        op.create_index(f'ix_stock_levels_live_{sort}', 'stock_levels', ['warehouse_id', 'deleted_at', sort, 'product_id'],
                        unique=False, sqlite_where=sa.text('deleted_at IS NULL'))
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ANALYZE stock_levels")  # the planner weighs the new indexes with the others


def downgrade():
    for sort in COPIED:
        op.drop_index(f'ix_stock_levels_live_{sort}', table_name='stock_levels', sqlite_where=sa.text('deleted_at IS NULL'))
    for column in COPIED:  # in place: SQLite cannot copy `stock_levels` (its generated columns)
        op.drop_column('stock_levels', column)
