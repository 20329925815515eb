"""Pages of a list, by number or by cursor, each a short walk of one index.

How a list gets fast pages at any depth (every list follows these three steps):

1. One index holds what the list always filters on and its sort column, in that
   order: the live-row condition and any equality filter first, the sort column
   last. The same columns serve both databases: a composite index on MariaDB, made
   partial on SQLite with `sqlite_where=LIVE` (models/types.py). Both end with the
   primary key, which breaks ties, so a page skips index entries and never reads a
   row it passes over: `Index("ix_products_live_price", "deleted_at", "price",
   sqlite_where=LIVE)`, or `("category", "deleted_at", "price")` for a filter. A
   condition kept in another table (a product's deletion, for its stock row) is
   copied into the listed table (`stock.deleted_at`): otherwise each row skipped
   costs a join. A new index comes with its migration (migrations/versions/).
2. The service names the order, `order = ordering(query.sort, SORTS, key=Table.id)`,
   and answers `paginate(filtered, query, order, view)`: `filtered` selects the rows
   (the table and its WHERE), `view` the columns an item shows (services/views.py).
3. The query model inherits `schemas.common.PageQuery` (`page`, `per_page`, `after`,
   `before`) and the route answers `paginated(...)`: every page carries the cursors
   `next_after` and `prev_before` beside its number (docs: "Pages and cursors").

A numbered page walks the index from the nearer end, so at most half of it, or
from a place in the list the service knows without walking (a `Landmark`: where a
day begins in the whole movement log) when one is nearer still; a cursor page
seeks straight to its row at any depth, and rows added or removed meanwhile never
shift or repeat what is still to come. Sort columns hold no NULL in
listed rows (a NULL would end a cursor walk).
"""
import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from typing import Any

from sqlalchemy import ColumnElement, Select, UnaryExpression, func, literal, select, union_all
from sqlalchemy.sql import operators

from db import db
from schemas.common import PageQuery
from services.views import shaped
from utils.exceptions import ValidationFailed
from utils.pagination import Page

# The database walks every row a page skips, and walking an index backwards costs it
# about 1.5 times as much per row: a page is read backwards only when that walk is as
# much shorter (from the far end: pages past 60 % of the rows).
BACKWARDS = 1.5
# A page nearer an end of its list than this many rows is walked to from there without
# asking for the list's landmarks: reading them is a query of its own (the whole log's
# cost ~1.5 ms on MariaDB, as much as walking ~25,000 index entries).
LANDMARKS_FROM = 20_000
INT64 = 2**63
DECIMAL_DIGITS = 40  # far beyond any price, short of what a database would refuse to compare
BAD_CURSOR = "游标无效：请使用上一页返回的 next_after 或 prev_before"


@dataclass(frozen=True)
class Ordering:
    """A list's order: `name` as the client asked for it (a cursor belongs to one), and
    its columns, each ascending or descending; the last one is unique (the row's key)."""

    name: str
    columns: tuple[UnaryExpression, ...]

    @property
    def key(self) -> ColumnElement:
        return self.columns[-1].element

    def cursor(self, values: Sequence) -> str:
        """The opaque cursor of a row with these sort values: URL-safe base64 of JSON."""
        document = [self.name, *(_plain(value) for value in values)]
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def position(self, cursor: str, field: str) -> tuple:
        """The sort values a cursor of this order holds; a 400 naming `field` otherwise."""
        try:
            document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if not isinstance(document, list) or not document or not isinstance(document[0], str):
                raise ValueError(document)
            name, *values = document
            if name != self.name:
                raise ValidationFailed(details={field: f"游标属于另一种排序，不是 {self.name}"})
            if len(values) != len(self.columns):
                raise ValueError(values)
            return tuple(_typed(value, column.element.type.python_type) for value, column in zip(values, self.columns))
        except (ValueError, TypeError, binascii.Error, InvalidOperation, OverflowError):
            raise ValidationFailed(BAD_CURSOR, {field: "无法识别的游标"}) from None


def ordering(sort: str, columns: Mapping[str, ColumnElement], key: ColumnElement) -> Ordering:
    """`sort` as a client names it (`price`, or `-price` descending) among `columns`;
    ties broken by `key` in the same direction."""
    column = columns[sort.removeprefix("-")]
    direction = "desc" if sort.startswith("-") else "asc"
    return Ordering(sort, tuple(getattr(each, direction)() for each in ((column,) if column is key else (column, key))))


@dataclass(frozen=True)
class Landmark:
    """A place in a list known without walking to it, for an order of one column (its
    key): exactly `rows` rows come before the first row at or past `value`."""

    rows: int
    value: Any


class UnshownRows(LookupError):
    """Keys of a page that its view does not show: the filter promised rows that the
    view's joins do not find (the caller's shortcut rested on a count that was wrong)."""


@dataclass(frozen=True)
class Position:
    """Where a cursor page starts: just after (or before) the row with these sort values."""

    values: tuple
    after: bool = True


def paginate(filtered: Select, query: PageQuery, order: Ordering, view: Select, *, total: int | None = None,
             start: Position | None = None, view_params: dict | None = None,
             landmarks: Callable[[], Sequence[Landmark]] | None = None) -> Page:
    """The page `query` asks for of `filtered` in `order`, each item shown as `view`
    (with the values of its bound parameters, if it has any), with a COUNT over the
    same filters unless the caller knows `total` already. A numbered page is walked to
    from the nearest of the list's ends and of the places `landmarks()` knows, when
    the caller can tell any (asked only for a page far from both ends).

    Two steps: the sort values and keys of the page from the filtered rows' index
    alone (what the cursors are made of), then those rows' view by key."""
    # Plain Core statements on the session's connection: the ORM's execution layer
    # costs more than these narrow queries themselves.
    connection = db.session.connection()
    if total is None:
        total = count_rows(filtered)
    start = start or _requested(query, order)
    keys_of = filtered.with_only_columns(*(clause.element for clause in order.columns))
    if start is None:
        rows, earlier, later = _numbered(connection, keys_of, order.columns, query.page, query.per_page, total,
                                         landmarks)
    else:
        rows, earlier, later = _seek(connection, keys_of, order.columns, start, query.per_page)
    items = []
    if rows:
        label = _label_of(view, order.key)
        shown = connection.execute(view.where(order.key.in_([row[-1] for row in rows])), view_params).mappings()
        by_key = {row[label]: row for row in shown}
        if len(by_key) < len(rows):
            raise UnshownRows([row[-1] for row in rows if row[-1] not in by_key])
        items = [shaped(by_key[row[-1]]) for row in rows]
    return Page(items=items, page=query.page, per_page=query.per_page, total=total,
                next_after=order.cursor(rows[-1]) if rows and later else None,
                prev_before=order.cursor(rows[0]) if rows and earlier else None)


@functools.cache
def _label_of(view: Select, key: ColumnElement) -> str:
    """The name under which `view` shows the key (`id`, or `product.id` in a stock row)."""
    return next(column.key for column in view.selected_columns if column.shares_lineage(key))


def _requested(query: PageQuery, order: Ordering) -> Position | None:
    if query.after is not None:
        return Position(order.position(query.after, "after"))
    if query.before is not None:
        return Position(order.position(query.before, "before"), after=False)
    return None


def _numbered(connection, keys_of: Select, columns: tuple, page: int, per_page: int, total: int,
              landmarks: Callable[[], Sequence[Landmark]] | None):
    """Page `page` by its offset, walked to from the nearest landmark before it or
    after it (the list's two ends are landmarks too); and whether rows come before
    and after it."""
    offset = (page - 1) * per_page
    if offset >= total:
        return [], False, False
    size = min(per_page, total - offset)
    marks = [Landmark(0, None), Landmark(total, None)]
    if landmarks is not None and min(offset, (total - offset - size) * BACKWARDS) > LANDMARKS_FROM:
        marks += landmarks()
    ahead = max((mark for mark in marks if mark.rows <= offset), key=attrgetter("rows"))
    behind = min((mark for mark in marks if mark.rows >= offset + size), key=attrgetter("rows"))
    if (behind.rows - offset - size) * BACKWARDS < offset - ahead.rows:
        before = [] if behind.value is None else [_past(_reversed(columns[-1]), behind.value)]
        statement = keys_of.where(*before).order_by(*map(_reversed, columns)).limit(size)
        rows = connection.execute(statement.offset(behind.rows - offset - size)).all()[::-1]
    else:
        at_or_past = [] if ahead.value is None else [~_past(_reversed(columns[-1]), ahead.value)]
        statement = keys_of.where(*at_or_past).order_by(*columns).limit(size)
        rows = connection.execute(statement.offset(offset - ahead.rows)).all()
    return rows, offset > 0, offset + len(rows) < total


def _seek(connection, keys_of: Select, columns: tuple, start: Position, per_page: int):
    """The `per_page` rows just after (or before) `start`, read straight down the index;
    one row more tells whether the walk goes on."""
    walk = columns if start.after else tuple(map(_reversed, columns))
    rows = connection.execute(_beyond(keys_of, walk, start.values, per_page + 1)).all()
    more = len(rows) > per_page
    rows = rows[:per_page]
    if start.after:
        return rows, True, more
    return rows[::-1], more, True


def _beyond(keys_of: Select, walk: tuple, values: tuple, limit: int) -> Select:
    """The first `limit` rows past `values` in the order `walk`.

    Past (v1, v2) is `c1 > v1`, or `c1 = v1 and c2 > v2`: one seek each, as neither
    database seeks an index with the row value `(c1, c2) > (v1, v2)` or with the OR,
    and a tie of thousands on `c1` (products created together) would be walked
    through. The parts are joined nearest first, so the union is in `walk` order."""
    parts = []
    for depth in range(len(walk) - 1, -1, -1):
        equal = [clause.element == value for clause, value in zip(walk[:depth], values)]
        part = keys_of.where(*equal, _past(walk[depth], values[depth])).order_by(*walk).limit(limit)
        parts.append(part)
    if len(parts) == 1:
        return parts[0]
    nearest_first = union_all(*(
        select(literal(rank).label("part"), *part.subquery().c) for rank, part in enumerate(parts))).subquery()
    sorted_columns = list(nearest_first.c)[1:]
    return (select(*sorted_columns)
            .order_by(nearest_first.c.part, *(_like(clause, column) for clause, column in zip(walk, sorted_columns)))
            .limit(limit))


def _past(clause: UnaryExpression, value):
    """The rows after `value` in this column's direction."""
    return clause.element < value if clause.modifier is operators.desc_op else clause.element > value


def _like(clause: UnaryExpression, column: ColumnElement) -> UnaryExpression:
    return column.desc() if clause.modifier is operators.desc_op else column.asc()


def _reversed(clause: UnaryExpression) -> UnaryExpression:
    """`x ASC` ↔ `x DESC`."""
    if clause.modifier is operators.desc_op:
        return clause.element.asc()
    return clause.element.desc()


def _plain(value):
    """A sort value as JSON holds it exactly: decimals and instants as text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _typed(value, python_type: type):
    """A cursor's JSON value back as the column's type, refused (ValueError) when it is
    not one a row of that column could hold."""
    if python_type is int and type(value) is int and -INT64 <= value < INT64:
        return value
    if python_type is str and isinstance(value, str):
        return value
    if python_type is Decimal and isinstance(value, str):
        number = Decimal(value)
        if number.is_finite() and len(number.as_tuple().digits) <= DECIMAL_DIGITS and abs(number.adjusted()) <= DECIMAL_DIGITS:
            return number
    if python_type is datetime and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment.astimezone(timezone.utc)
    raise ValueError(value)


def count_rows(filtered: Select) -> int:
    """How many rows `filtered` selects, counted by the database."""
    counting = filtered.with_only_columns(func.count(), maintain_column_froms=True)
    return db.session.connection().scalar(counting) or 0


def contains(column, text: str):
    """`column` contains `text`, whose `%` and `_` are taken literally on every database."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")
