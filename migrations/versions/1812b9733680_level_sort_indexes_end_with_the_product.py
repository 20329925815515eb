"""level sort indexes end with the product

The indexes of a warehouse's stock list in the levels' own sorts (live and low rows)
get `product_id` as their last column, the list's tie-breaker: SQLite's indexes of
`stock_levels` (a two-column key) end with the rowid, so every page sorted the whole
warehouse. InnoDB's ended with the key already; the same columns serve both.

Revision ID: 1812b9733680
Revises: 5602b96d1a8d
Create Date: 2026-12-04 21:58:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '1812b9733680'
down_revision = '5602b96d1a8d'
branch_labels = None
depends_on = None

SORTED = ("quantity", "min_quantity", "updated_at")
# Each index's rows: its name's part, the column after `warehouse_id`, SQLite's condition.
ROWS = (("live", "deleted_at", "deleted_at IS NULL"), ("low", "low", "low = 1"))


def _rebuild(tail: tuple[str, ...]) -> None:
    for part, column, condition in ROWS:
        for sort in SORTED:
            name = f"ix_stock_levels_{part}_{sort}"
            op.drop_index(name, table_name="stock_levels", sqlite_where=sa.text(condition))
            op.create_index(name, "stock_levels", ["warehouse_id", column, sort, *tail], unique=False,
                            sqlite_where=sa.text(condition))


def upgrade():
    _rebuild(("product_id",))
    if op.get_bind().dialect.name == "sqlite":
        # Dropping an index drops its statistics: without them the planner takes any
        # covering index of the levels for the sort by `product_id`, and sorts.
        op.execute("ANALYZE stock_levels")


def downgrade():
    _rebuild(())
