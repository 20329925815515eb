"""Exports: the products, the stock levels and the ledger as rows, read in pages of a
fixed size by key (never OFFSET, never all at once) from one read snapshot, so a file
of any length is written in constant memory and is consistent with itself."""
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, select, tuple_

import heartbeat
from db import db
from models import Product, Stock, StockLevel, StockLog, Warehouse
from schemas.bulk import LogExportQuery, StockExportQuery
from services import views
from services.log_service import log_filters
from services.stock_service import live_warehouse
from services.transaction import begin_snapshot

PAGE = 2000
# The import's own columns, so an exported file imports back unchanged.
PRODUCT_COLUMNS = ("sku", "name", "barcode", "price", "category", "description", "min_quantity", "max_quantity",
                   "location")
# `quantity` and `expected_quantity` both hold the level as exported: edit `quantity`,
# import, and a row whose level moved since is refused instead of erasing that change.
# `reserved` and `available` are for reading; an import passes over them.
STOCK_COLUMNS = ("sku", "name", "warehouse", "quantity", "expected_quantity", "reserved", "available",
                 "min_quantity", "max_quantity", "location")
# The ledger row as `/api/logs` shows it; the warehouse's columns last, after the ones
# files exported before warehouses had.
LOG_COLUMNS = ("id", "created_at", "product_id", "sku", "name", "action", "quantity", "before_quantity",
               "after_quantity", "reason", "operator", "on_behalf_of", "seq", "hash", "warehouse_id", "warehouse_code",
               "level_before", "level_after", "transfer_id", "reservation_id")


PRODUCTS = (select(Product.id, *(getattr(Product, c) for c in PRODUCT_COLUMNS[:6]),
                   Stock.min_quantity, Stock.max_quantity, Stock.location)
            .join(Stock).where(Product.deleted_at.is_(None)))
# The settings columns are the product's (what the import sets), so a level's row
# imports back unchanged; the level's own thresholds are set with an adjust.
LEVELS = (select(StockLevel.product_id, StockLevel.warehouse_id, Product.sku, Product.name, Warehouse.code,
                 StockLevel.quantity, views.LEVEL_RESERVED.label("reserved"), Stock.min_quantity, Stock.max_quantity,
                 Stock.location)
          .join(Product, Product.id == StockLevel.product_id).join(Stock, Stock.product_id == StockLevel.product_id)
          .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
          .where(StockLevel.deleted_at.is_(None), Product.deleted_at.is_(None)))


def _pages(statement: Select, *key) -> Iterator[Any]:
    """Every row of `statement`, read PAGE at a time after the last key seen (one
    column, or several compared as a tuple)."""
    last = None
    ordered = key[0] if len(key) == 1 else tuple_(*key)
    while True:
        page = statement if last is None else statement.where(ordered > last)
        rows = db.session.execute(page.order_by(*key).limit(PAGE)).all()
        yield from rows
        heartbeat.beat()  # a page read and passed on: the worker is making progress
        if len(rows) < PAGE:
            return
        values = tuple(getattr(rows[-1], column.key) for column in key)
        last = values[0] if len(key) == 1 else tuple_(*values)


def row_count(statement: Select) -> int:
    """How many rows an export will have, for a progress bar."""
    return db.session.scalar(select(func.count()).select_from(statement.subquery()))


def product_rows() -> Iterator[tuple]:
    """Live products in id order, as the import reads them."""
    begin_snapshot()
    for row in _pages(PRODUCTS, Product.id):
        yield tuple(row)[1:]


def check_warehouse(query: StockExportQuery) -> None:
    """An unknown or deleted warehouse is a 404 before the file starts."""
    if query.warehouse_id is not None:
        live_warehouse(query.warehouse_id)


def stock_rows(query: StockExportQuery) -> Iterator[tuple]:
    """One row per level of a live product, its count in `quantity` and `expected_quantity`."""
    begin_snapshot()
    levels = LEVELS if query.warehouse_id is None else LEVELS.where(StockLevel.warehouse_id == query.warehouse_id)
    for row in _pages(levels, StockLevel.product_id, StockLevel.warehouse_id):
        yield (row.sku, row.name, row.code, row.quantity, row.quantity, row.reserved, row.quantity - row.reserved,
               row.min_quantity, row.max_quantity, row.location)


def movements(query: LogExportQuery) -> Select:
    return select(StockLog.id, StockLog.created_at, StockLog.product_id, StockLog.sku, StockLog.product_name,
                  *(getattr(StockLog, c) for c in LOG_COLUMNS[5:])).where(*log_filters(query))


def log_rows(query: LogExportQuery) -> Iterator[tuple]:
    """The filtered ledger, oldest first, as it stood when the export began."""
    begin_snapshot()
    for row in _pages(movements(query), StockLog.id):
        yield (row.id, row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), *tuple(row)[2:])
