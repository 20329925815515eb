"""Counting and slicing a query into one page, without loading the rest."""
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, UnaryExpression, func
from sqlalchemy.sql import operators

from db import db
from services.views import shaped
from utils.pagination import Page

# Past this share of the rows a page is read from the far end: the database walks
# every row it skips, and walking backwards costs it ~1.7 times as much per row.
FAR_END = 0.6
def paginate(filtered: Select, page: int, per_page: int, *, order: Sequence[UnaryExpression], key: ColumnElement,
             view: Select, total: int | None = None) -> Page:
    """One page of `filtered` in `order` (which ends with `key`, so it is total), each
    item shown as `view` (a select of columns, see services/views.py), plus a COUNT
    over the same filters unless the caller knows `total` already.

    The page is found in two steps: the keys of the page from the filtered rows'
    narrowest index alone, then those rows' view by key. A deep page then skips
    index entries instead of joining and reading every row it passes over, and a
    page near the end is read backwards from the end (a short walk) and turned round.
    """
    # Plain Core statements on the session's connection: the ORM's execution layer
    # costs more than these narrow queries themselves.
    connection = db.session.connection()
    if total is None:
        total = count_rows(filtered)
    offset = (page - 1) * per_page
    keys_of = filtered.with_only_columns(key)
    if offset >= total:
        keys = []
    elif offset > FAR_END * total:
        from_end = max(0, total - offset - per_page)
        keys = connection.scalars(keys_of.order_by(*map(_reversed, order))
                                  .limit(min(per_page, total - offset)).offset(from_end)).all()[::-1]
    else:
        keys = connection.scalars(keys_of.order_by(*order).limit(per_page).offset(offset)).all()
    items = []
    if keys:
        by_key = {row[key.key]: row for row in connection.execute(view.where(key.in_(keys))).mappings()}
        items = [shaped(by_key[k]) for k in keys]
    return Page(items=items, page=page, per_page=per_page, total=total)


def keyset_page(view: Select, key: ColumnElement, before: int, per_page: int, total: int) -> Page:
    """The `per_page` rows of `view` just below `before`, in descending `key` order: one
    statement straight down `key`'s index (or the table itself), as a cursor skips
    nothing. `total` is the caller's count of the whole list."""
    rows = db.session.connection().execute(view.where(key < before).order_by(key.desc()).limit(per_page)).mappings()
    return Page(items=[shaped(row) for row in rows], page=1, per_page=per_page, total=total, keyset=True)


def count_rows(filtered: Select) -> int:
    """How many rows `filtered` selects, counted by the database."""
    counting = filtered.with_only_columns(func.count(), maintain_column_froms=True)
    return db.session.connection().scalar(counting) or 0


def _reversed(clause: UnaryExpression) -> UnaryExpression:
    """`x ASC` ↔ `x DESC`. NULLs sort first ascending and last descending on SQLite and
    MySQL alike, so the reversed order is exactly the original read backwards."""
    if clause.modifier is operators.desc_op:
        return clause.element.asc()
    return clause.element.desc()


def contains(column, text: str):
    """`column` contains `text`, whose `%` and `_` are taken literally on every database."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")
