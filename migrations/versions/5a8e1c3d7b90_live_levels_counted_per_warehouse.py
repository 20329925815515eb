"""live levels counted per warehouse

`level_counts` holds each warehouse's live levels in 16 rows, one per shard of the
level's product (models/shards.py), filled here from the live levels as they are now;
the service keeps it with every level created and every product deleted.

Revision ID: 5a8e1c3d7b90
Revises: fc5eef0a5134
Create Date: 2026-12-05 02:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5a8e1c3d7b90'
down_revision = 'fc5eef0a5134'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('level_counts',
    sa.Column('warehouse_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('shard', sa.SmallInteger(), server_default='0', autoincrement=False, nullable=False),
    sa.Column('live', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('warehouse_id', 'shard', name=op.f('pk_level_counts')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_unicode_ci',
    mysql_engine='InnoDB'
    )
    op.execute("""
        INSERT INTO level_counts (warehouse_id, shard, live)
        SELECT warehouse_id, product_id % 16, COUNT(*) FROM stock_levels WHERE deleted_at IS NULL
        GROUP BY warehouse_id, product_id % 16
    """)


def downgrade():
    op.drop_table('level_counts')
