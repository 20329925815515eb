"""Counting and slicing a query into one page, without loading the rest."""
from sqlalchemy import ColumnElement, Select, func

from database import db
from services.views import shaped
from utils.pagination import Page


def paginate(filtered: Select, page: int, per_page: int, *, key: ColumnElement, view: Select,
             total: int | None = None) -> Page:
    """One page of `filtered` (its filters and order), each item shown as `view`
    (a select of columns, see services/views.py), plus a COUNT over the same filters
    unless the caller knows `total` already.

    The page is found in two steps: the keys of the page from the filtered rows'
    narrowest index alone, then those rows' view by key. A deep page then skips
    index entries instead of joining and reading every row it passes over.
    """
    if total is None:
        counting = filtered.order_by(None).with_only_columns(func.count(), maintain_column_froms=True)
        total = db.session.scalar(counting) or 0
    keys = db.session.scalars(filtered.with_only_columns(key).limit(per_page).offset((page - 1) * per_page)).all()
    items = []
    if keys:
        by_key = {row[key.key]: row for row in db.session.execute(view.where(key.in_(keys))).mappings()}
        items = [shaped(by_key[k]) for k in keys]
    return Page(items=items, page=page, per_page=per_page, total=total)


def contains(column, text: str):
    """`column` contains `text`, whose `%` and `_` are taken literally on every database."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")
