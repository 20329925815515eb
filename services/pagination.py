"""Counting and slicing a query into one page, without loading the rest."""
from sqlalchemy import Select, func

from database import db
from utils.pagination import Page


def paginate(statement: Select, page: int, per_page: int, key=None, total: int | None = None) -> Page:
    """One page of `statement`'s entities, plus a COUNT over the same filters (unless
    the caller knows `total` already).

    With `key` (the entity's primary key column) the page is found in two steps: the
    keys of the page from the narrow rows alone, then those rows whole with their
    eagerly joined relations. A deep page then skips plain index entries instead of
    joining every row it passes over.
    """
    if total is None:
        # COUNT(*) over the same FROM and filters, without the entity's eager joins.
        counting = statement.order_by(None).with_only_columns(func.count(), maintain_column_froms=True)
        total = db.session.scalar(counting) or 0
    offset = (page - 1) * per_page
    if key is None:
        rows = list(db.session.scalars(statement.limit(per_page).offset(offset)).unique())
    else:
        keys = db.session.scalars(statement.with_only_columns(key).limit(per_page).offset(offset)).all()
        rows = list(db.session.scalars(statement.where(key.in_(keys))).unique()) if keys else []
    return Page(items=rows, page=page, per_page=per_page, total=total)


def contains(column, text: str):
    """`column` contains `text`, whose `%` and `_` are taken literally on every database."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")
