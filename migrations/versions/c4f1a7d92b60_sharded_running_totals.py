"""running totals sharded by product

`movement_daily` is keyed (day, shard) and `product_counts` (category, shard), the shard
being the product id modulo 16 (models/shards.py): changes of different products add to
different rows. Rows already there become shard 0, so every sum stays what it was.

Revision ID: c4f1a7d92b60
Revises: f71b2435c6bd
Create Date: 2026-12-04 18:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c4f1a7d92b60'
down_revision = 'f71b2435c6bd'
branch_labels = None
depends_on = None

KEYS = {'movement_daily': 'day', 'product_counts': 'category'}
COUNTERS = {
    'movement_daily': [f'{action}_{kind}' for action in ('in', 'out', 'adjust') for kind in ('movements', 'quantity')],
    'product_counts': ['live'],
}


def upgrade():
    for table, key in KEYS.items():
        if op.get_bind().dialect.name == 'mysql':  # one statement: the table never lacks a primary key
            op.execute(f'ALTER TABLE {table} ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0,'
                       f' DROP PRIMARY KEY, ADD PRIMARY KEY ({key}, shard)')
        else:
            with op.batch_alter_table(table, recreate='always') as batch_op:
                batch_op.add_column(sa.Column('shard', sa.SmallInteger(), nullable=False, server_default='0'))
                batch_op.drop_constraint(f'pk_{table}', type_='primary')
                batch_op.create_primary_key(f'pk_{table}', [key, 'shard'])


def downgrade():
    """Each key's shards merged back into one row."""
    connection = op.get_bind()
    for table, key in KEYS.items():
        rows = sa.table(table, sa.column(key), *(sa.column(name) for name in COUNTERS[table]))
        merged = [dict(row._mapping) for row in connection.execute(
            sa.select(rows.c[key], *(sa.func.sum(rows.c[name]).label(name) for name in COUNTERS[table]))
            .group_by(rows.c[key]))]
        connection.execute(sa.delete(rows))
        if connection.dialect.name == 'mysql':
            op.execute(f'ALTER TABLE {table} DROP PRIMARY KEY, ADD PRIMARY KEY ({key}), DROP COLUMN shard')
        else:
            with op.batch_alter_table(table, recreate='always') as batch_op:
                batch_op.drop_column('shard')
        if merged:
            connection.execute(sa.insert(rows), merged)
