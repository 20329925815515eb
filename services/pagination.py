"""Counting and slicing a query into one page, without loading the rest."""
from sqlalchemy import Select, func, select

from database import db
from utils.pagination import Page


def paginate(statement: Select, page: int, per_page: int, scalars: bool = True) -> Page:
    """Run `statement` for one page, plus a COUNT over the same filters."""
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    window = statement.limit(per_page).offset((page - 1) * per_page)
    result = db.session.execute(window)
    rows = list(result.scalars().unique() if scalars else result.all())
    return Page(items=rows, page=page, per_page=per_page, total=total or 0)


def contains(column, text: str):
    """`column` contains `text`, whose `%` and `_` are taken literally on every database."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")
