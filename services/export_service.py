"""Exports: the products, the stock levels and the ledger as rows, read in pages of a
fixed size by key (never OFFSET, never all at once) from one read snapshot, so a file
of any length is written in constant memory and is consistent with itself."""
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, func, select

import heartbeat
from db import db
from models import Product, Stock, StockLog
from schemas.bulk import LogExportQuery, StockExportQuery
from services.import_service import DEFAULT_WAREHOUSE
from services.log_service import log_filters
from services.transaction import begin_snapshot
from utils.exceptions import NotFound

PAGE = 2000
DEFAULT_WAREHOUSE_ID = 1
# The import's own columns, so an exported file imports back unchanged.
PRODUCT_COLUMNS = ("sku", "name", "barcode", "price", "category", "description", "min_quantity", "max_quantity",
                   "location")
# `quantity` and `expected_quantity` both hold the level as exported: edit `quantity`,
# import, and a row whose level moved since is refused instead of erasing that change.
STOCK_COLUMNS = ("sku", "name", "warehouse", "quantity", "expected_quantity", "min_quantity", "max_quantity",
                 "location")
LOG_COLUMNS = ("id", "created_at", "product_id", "sku", "name", "action", "quantity", "before_quantity",
               "after_quantity", "reason", "operator", "on_behalf_of", "seq", "hash")


PRODUCTS = (select(Product.id, *(getattr(Product, c) for c in PRODUCT_COLUMNS[:6]),
                   Stock.min_quantity, Stock.max_quantity, Stock.location)
            .join(Stock).where(Product.deleted_at.is_(None)))
LEVELS = (select(Stock.product_id, Product.sku, Product.name, Stock.quantity, Stock.min_quantity,
                 Stock.max_quantity, Stock.location)
          .join(Product).where(Stock.deleted_at.is_(None)))


def _pages(statement: Select, key) -> Iterator[Any]:
    """Every row of `statement`, read PAGE at a time after the last key seen."""
    last = None
    while True:
        page = statement if last is None else statement.where(key > last)
        rows = db.session.execute(page.order_by(key).limit(PAGE)).all()
        yield from rows
        heartbeat.beat()  # a page read and passed on: the worker is making progress
        if len(rows) < PAGE:
            return
        last = getattr(rows[-1], key.key)


def row_count(statement: Select) -> int:
    """How many rows an export will have, for a progress bar."""
    return db.session.scalar(select(func.count()).select_from(statement.subquery()))


def product_rows() -> Iterator[tuple]:
    """Live products in id order, as the import reads them."""
    begin_snapshot()
    for row in _pages(PRODUCTS, Product.id):
        yield tuple(row)[1:]


def check_warehouse(query: StockExportQuery) -> None:
    """Only the default warehouse exists so far: another id is unknown (404)."""
    if query.warehouse_id not in (None, DEFAULT_WAREHOUSE_ID):
        raise NotFound("仓库不存在", {"warehouse_id": query.warehouse_id})


def stock_rows(query: StockExportQuery) -> Iterator[tuple]:
    """One row per level of a live product, its count in `quantity` and `expected_quantity`."""
    begin_snapshot()
    for row in _pages(LEVELS, Stock.product_id):
        yield (row.sku, row.name, DEFAULT_WAREHOUSE, row.quantity, row.quantity, row.min_quantity,
               row.max_quantity, row.location)


def movements(query: LogExportQuery) -> Select:
    return select(StockLog.id, StockLog.created_at, StockLog.product_id, StockLog.sku, StockLog.product_name,
                  *(getattr(StockLog, c) for c in LOG_COLUMNS[5:])).where(*log_filters(query))


def log_rows(query: LogExportQuery) -> Iterator[tuple]:
    """The filtered ledger, oldest first, as it stood when the export began."""
    begin_snapshot()
    for row in _pages(movements(query), StockLog.id):
        yield (row.id, row.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), *tuple(row)[2:])
