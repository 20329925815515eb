"""Read views: what an answer shows, selected as plain columns and shaped like the
response models (and the console's templates) read it.

Loading ORM entities for a read-only answer (identity map, eager joins, change
tracking) costs several times the rows themselves: a page of 20 products spent
~5 ms in Python around ~1 ms of SQL. Rows cost a few microseconds each.
"""
import functools
from collections.abc import Mapping
from types import SimpleNamespace

from sqlalchemy import ColumnElement, case, false, func, join, select

from models import Product, Reservation, Stock, StockLevel, StockLog, Warehouse, utc_now


def within(part: str, **columns: ColumnElement) -> list[ColumnElement]:
    """Columns labelled `part.name`: `shaped` nests them as `item.part.name`."""
    return [column.label(f"{part}.{name}") for name, column in columns.items()]


def still_held(stored: ColumnElement, *place: ColumnElement) -> ColumnElement:
    """What a product or level holds as of now: its stored `reserved` less its active
    reservations already past their time, which hold nothing from that instant on (the
    next write of the product marks them expired). Nothing stored: nothing to look up."""
    past_due = select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
        *place, Reservation.status == "active", Reservation.expires_at <= utc_now()).scalar_subquery()
    return case((stored > 0, stored - past_due), else_=0)


STOCK_RESERVED = still_held(Stock.reserved, Reservation.product_id == Stock.product_id).label("reserved")
LEVEL_RESERVED = still_held(StockLevel.reserved, Reservation.product_id == StockLevel.product_id,
                            Reservation.warehouse_id == StockLevel.warehouse_id)
PRODUCT = select(
    Product.id, Product.name, Product.description, Product.price, Product.category, Product.sku, Product.barcode,
    Product.created_at, Product.updated_at, Product.version,
    *within("stock", quantity=Stock.quantity, reserved=STOCK_RESERVED, min_quantity=Stock.min_quantity,
             max_quantity=Stock.max_quantity,
             location=Stock.location, is_low=Stock.is_low),
).select_from(join(Product, Stock))


def _stock(reserved: ColumnElement):
    return select(
        Stock.product_id, Stock.quantity, reserved.label("reserved"), Stock.min_quantity, Stock.max_quantity,
        Stock.location, Stock.is_low.label("is_low"), Stock.updated_at,
        *within("product", id=Product.id, name=Product.name, sku=Product.sku, category=Product.category),
    ).select_from(join(Stock, Product))


STOCK = _stock(STOCK_RESERVED)
# The write path's: what is stored, settled under the product's lock before it counts.
STORED_STOCK = _stock(Stock.reserved)
LOG = select(StockLog.__table__)
# A product's level in one warehouse (schemas.warehouse.LevelOut), with its warehouse's code.
LEVEL = select(
    StockLevel.product_id, StockLevel.warehouse_id, Warehouse.code.label("warehouse_code"), StockLevel.quantity,
    LEVEL_RESERVED.label("reserved"),
    StockLevel.min_quantity, StockLevel.max_quantity, StockLevel.location, StockLevel.is_low.label("is_low"),
    StockLevel.updated_at,
).select_from(join(StockLevel, Warehouse))
# One warehouse's list: each level with its product's summary.
WAREHOUSE_STOCK = LEVEL.add_columns(
    *within("product", id=Product.id, name=Product.name, sku=Product.sku, category=Product.category),
).join_from(StockLevel, Product)
_HELD_HERE = (StockLevel.warehouse_id == Warehouse.id, StockLevel.deleted_at.is_(None), StockLevel.quantity > 0)
WAREHOUSE = select(
    Warehouse.id, Warehouse.code, Warehouse.name, Warehouse.address,
    func.coalesce(Warehouse.is_default, false()).label("is_default"), Warehouse.created_at, Warehouse.updated_at,
    select(func.coalesce(func.sum(StockLevel.quantity), 0)).where(*_HELD_HERE).scalar_subquery().label("total_quantity"),
    select(func.count()).where(*_HELD_HERE).scalar_subquery().label("products"),
)


def shaped(row: Mapping) -> SimpleNamespace:
    """One row as an object; columns labelled `part.name` become `item.part.name`."""
    own, parts = _layout(tuple(row.keys()))
    item = SimpleNamespace(**{key: row[key] for key in own})
    for part, names in parts:
        setattr(item, part, SimpleNamespace(**{name: row[key] for key, name in names}))
    return item


@functools.lru_cache(maxsize=256)
def _layout(keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]:
    """A view's columns split once into its own and each part's (`part.name`): every read
    of a row is shaped, and a view has few column lists."""
    own, parts = [], {}
    for key in keys:
        part, dot, name = key.partition(".")
        if dot:
            parts.setdefault(part, []).append((key, name))
        else:
            own.append(key)
    return tuple(own), tuple((part, tuple(names)) for part, names in parts.items())
