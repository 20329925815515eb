"""each day's totals hold the range of ledger ids they count

`movement_daily` gets `first_id` and `last_id`, the least and greatest ledger id of the
rows each totals row counts, kept by every movement from now on: a numbered page deep in
the movement log starts at the day it falls in instead of walking every newer row.

The backfill gives every shard of a day the bounds of the whole day: rows from before
the totals were sharded are all counted in shard 0, so bounds by product shard would not
cover what those rows count. Pages only read a day's bounds across its shards.

Revision ID: fc5eef0a5134
Revises: 9c3e5b7a1d42
Create Date: 2026-12-05 03:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'fc5eef0a5134'
down_revision = '9c3e5b7a1d42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('movement_daily', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('last_id', sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    # DATE() gives the day as each database stores `movement_daily.day` (a date; SQLite's text).
    days = connection.execute(sa.text(
        "SELECT DATE(created_at) AS day, MIN(id) AS first, MAX(id) AS last FROM stock_logs GROUP BY DATE(created_at)"))
    bounds = [dict(row._mapping) for row in days]
    if bounds:
        connection.execute(sa.text("UPDATE movement_daily SET first_id = :first, last_id = :last WHERE day = :day"),
                           bounds)


def downgrade():
    with op.batch_alter_table('movement_daily', schema=None) as batch_op:
        batch_op.drop_column('last_id')
        batch_op.drop_column('first_id')
