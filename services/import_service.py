"""Importing products from a spreadsheet: every row checked first, then all of it applied
in one transaction, or nothing. Rows upsert by SKU; a `quantity` is a stocktake count,
written as an `adjust` through the ledger's own path (stock_service.record_change).

The checks that need the database (a count that moved since `expected_quantity` was
read, a barcode another product holds) run inside the transaction, under the locks,
and a dry run does the whole import and rolls it back: it cannot pass a file the real
import would refuse, nor the other way round."""
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any

from flask import current_app
from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

import heartbeat
from db import db
from models import NO_CATEGORY, Product, Stock, StockLevel, Warehouse, shard_of
from models.stock import is_low_level
from models.types import utcnow
from schemas.bulk import COLUMNS, NUMBER_FIELDS, READ_ONLY_HEADERS, ImportRow
from schemas.product import ProductOut
from schemas.stock import StockAdjust
from services import stock_service, views
from services.event_service import EventBatch
from services.product_counts import count_live
from services.spreadsheet import Limits, Table, cell_text, read_table
from services.transaction import run_in_write_transaction
from utils.exceptions import Conflict, ValidationFailed
from utils.validation import error_message

STOCKTAKE_REASON = "导入盘点"
PRODUCT_FIELDS = ("name", "barcode", "price", "category", "description")
STOCK_SETTINGS = ("min_quantity", "max_quantity", "location")
CHUNK = 500  # SKUs or ids in one `IN (...)`
HEADER_ROW = 1
PROGRESS_EVERY = 500  # rows between progress reports
REQUIRED_FOR_NEW = ("name", "price")
FIELD_BY_HEADER = {alias.lower(): name for name, aliases in COLUMNS.items() for alias in aliases}


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stock_adjusted: int = 0
    dry_run: bool = False
    # (row number, SKU, "created" | "updated" | "unchanged"), for the console's table.
    outcomes: list[tuple[int, str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "stock_adjusted": self.stock_adjusted, "errors": [], "dry_run": self.dry_run}


class ImportRefused(ValidationFailed):
    """A file with errors: 400 naming each bad row and column; nothing was applied."""

    def __init__(self, errors: list[dict], rows: int):
        errors.sort(key=lambda e: (e["row"], e["column"] or ""))
        limit = current_app.config["IMPORT_MAX_ERRORS"]
        details = {"errors": errors[:limit], "errors_total": len(errors), "rows": rows}
        super().__init__(f"导入文件有 {len(errors)} 处错误，未做任何更改", details)


def limits(cli: bool = False) -> Limits:
    """The configured bounds; the command line reads files of any number of rows."""
    config = current_app.config
    return Limits(max_bytes=config["IMPORT_MAX_BYTES"] if not cli else config["IMPORT_MAX_BYTES"] * 100,
                  max_rows=None if cli else config["IMPORT_MAX_ROWS"], max_cell=config["IMPORT_MAX_CELL"])


def preview_table(data: bytes) -> Table | None:
    """The file as read for an import, to show beside its outcome; None if unreadable."""
    try:
        return read_table(data, limits())
    except ValidationFailed:
        return None


def import_products(data: bytes, *, dry_run: bool = False, actor: str | None = None, cli: bool = False,
                    progress: Callable[[str, int, int], None] | None = None) -> ImportReport:
    """Check and apply a products file (see the module's docstring)."""
    table = read_table(data, limits(cli))
    errors: list[dict] = []
    columns = _columns(table.header, errors)
    rows = _parse(table, columns, errors)
    # Warehouse codes are checked against the database, on every row that names one
    # (also rows with other bad cells, so each problem is named at once).
    named = [(number, cell_text(cells[columns["warehouse"]])) for number, cells in table.rows
             if "warehouse" in columns and columns["warehouse"] < len(cells) and cell_text(cells[columns["warehouse"]])]
    report = ImportReport(rows=len(table.rows), dry_run=dry_run)

    def work() -> ImportReport:
        _Import(rows, table.header, columns, errors, report, actor, progress).run(named)
        if errors:
            raise ImportRefused(errors, report.rows)
        return report

    try:
        return run_in_write_transaction(work, commit=not dry_run)
    except IntegrityError:
        # Another request created one of these SKUs or took one of these barcodes after the
        # checks read them: the unique indexes refused it, and nothing was applied.
        raise Conflict("导入期间有其他请求创建了相同的 SKU 或使用了相同的条码，未做任何更改，请重试") from None


def _error(errors: list[dict], row: int, column: str | None, message: str) -> None:
    errors.append({"row": row, "column": column, "message": message})


def _columns(header: list[str], errors: list[dict]) -> dict[str, int]:
    """Field → its column's index; unknown, repeated or missing headers are row-1 errors."""
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        name = FIELD_BY_HEADER.get(title.lower())
        if not title:
            _error(errors, HEADER_ROW, None, f"第 {index + 1} 列没有表头")
        elif name is None and title.lower() in READ_ONLY_HEADERS:
            continue  # what the stock export shows for reading (reserved, available)
        elif name is None:
            _error(errors, HEADER_ROW, title, "未知的列（可用：" + "、".join(a for c in COLUMNS.values() for a in c) + "）")
        elif name in columns:
            _error(errors, HEADER_ROW, title, f"与「{header[columns[name]]}」是同一列")
        else:
            columns[name] = index
    if "sku" not in columns:
        _error(errors, HEADER_ROW, None, "缺少 sku（商品编码）列")
    if "expected_quantity" in columns and "quantity" not in columns:
        _error(errors, HEADER_ROW, header[columns["expected_quantity"]], "有账面数量列时必须有 quantity（数量）列")
    return columns


def _number(text: str) -> Decimal:
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError("必须是数字") from None
    if not number.is_finite():
        raise ValueError("必须是数字")
    return number


def _parse(table: Table, columns: dict[str, int], errors: list[dict]) -> list[tuple[int, ImportRow]]:
    """Each row's cells as an ImportRow; a bad cell is an error naming its row and column."""
    if "sku" not in columns:
        return []
    header = table.header
    parsed: list[tuple[int, ImportRow]] = []
    first_row_of: dict[str, int] = {}
    for number, cells in table.rows:
        values: dict[str, Any] = {}
        bad: set[str] = set()  # fields whose cell is already reported
        for index in range(len(header), len(cells)):
            if cell_text(cells[index]):
                _error(errors, number, None, f"第 {index + 1} 列有内容但没有表头")
                bad.add("")
        for name, index in columns.items():
            text = cell_text(cells[index]) if index < len(cells) else ""
            try:
                values[name] = _cell_value(name, text)
            except ValueError as exc:
                _error(errors, number, header[index], str(exc))
                bad.add(name)
        try:
            row = ImportRow.model_validate(values)
        except ValidationError as exc:
            for problem in exc.errors(include_url=False):
                name = str(problem["loc"][0]) if problem["loc"] else "sku"
                if name not in bad:
                    _error(errors, number, header[columns.get(name, columns["sku"])], error_message(problem))
            continue
        if bad:
            continue
        # One row per product and warehouse: a product kept in several warehouses has a row for each.
        key = (row.sku, row.warehouse)
        if key in first_row_of:
            _error(errors, number, header[columns["sku"]], f"与第 {first_row_of[key]} 行的 SKU 和仓库重复")
            continue
        first_row_of[key] = number
        parsed.append((number, row))
    return parsed


def _cell_value(name: str, text: str) -> Any:
    """A cell's text as the field takes it. Blank: no count for `quantity`, no check for
    `expected_quantity`, 0 for `min_quantity` (no threshold), cleared for optional texts."""
    if name in ("sku", "name") and not text:
        raise ValueError("不能为空")
    if name not in NUMBER_FIELDS:
        return text or None
    if not text:
        if name == "price":
            raise ValueError("不能为空")
        return 0 if name == "min_quantity" else None
    return _number(text)


class _Import:
    """The database half of one import, inside its transaction."""

    def __init__(self, rows, header, columns, errors, report, actor, progress):
        self.rows: list[tuple[int, ImportRow]] = rows
        self.header, self.columns, self.errors, self.report = header, columns, errors, report
        self.actor, self.progress = actor, progress

    def column(self, name: str) -> str:
        return self.header[self.columns[name]]

    def run(self, named_warehouses: list[tuple[int, str]]) -> None:
        existing = self._lock_existing([row.sku for _, row in self.rows])
        warehouses = dict(db.session.execute(
            select(Warehouse.code, Warehouse.id).where(Warehouse.deleted_at.is_(None))).all())
        for number, code in named_warehouses:
            if code not in warehouses:
                _error(self.errors, number, self.column("warehouse"), f"仓库「{code}」不存在")
        default = next(iter(db.session.scalars(select(Warehouse.id).where(Warehouse.is_default.is_(True)))))
        levels = self._levels([product["id"] for product in existing.values()])
        self._check_barcodes()
        creates, updates, settings, renamed, counts = [], [], [], [], []
        categories: Counter = Counter()
        merged_of: dict[str, dict] = {}  # SKU → its product as its first row left it
        for done, (number, row) in enumerate(self.rows, start=1):
            self._progress("checking rows", done, len(self.rows))
            given = row.model_dump(include=row.model_fields_set)
            current = existing.get(row.sku)
            warehouse_id = default if row.warehouse is None else warehouses.get(row.warehouse)  # None: reported
            if row.sku in merged_of:  # the same product in another warehouse: its count only
                merged = merged_of[row.sku]
                if any(merged[k] != v for k, v in given.items() if k in PRODUCT_FIELDS + STOCK_SETTINGS):
                    _error(self.errors, number, self.column("sku"), "同一 SKU 的各行商品信息必须一致")
                    continue
                status = "unchanged"
            elif current is None:
                merged = self._new(number, row, given)
                if merged is None:
                    continue
                creates.append(merged)
                status = "created"
            else:
                merged = {**current, **{k: v for k, v in given.items() if k in PRODUCT_FIELDS + STOCK_SETTINGS}}
                if not self._thresholds_ok(number, merged):
                    continue
                status = "unchanged"
                if any(merged[k] != current[k] for k in PRODUCT_FIELDS + STOCK_SETTINGS):
                    status = "updated"
                    updates.append(merged)
                    if merged["category"] != current["category"]:
                        categories[(current["category"] or NO_CATEGORY, shard_of(current["id"]))] -= 1
                        categories[(merged["category"] or NO_CATEGORY, shard_of(current["id"]))] += 1
                    if any(merged[k] != current[k] for k in STOCK_SETTINGS):
                        settings.append(merged)
                    if merged["name"] != current["name"]:
                        renamed.append(merged)
            merged_of.setdefault(row.sku, merged)
            if row.quantity is not None and warehouse_id is not None:
                level = levels.get((current["id"], warehouse_id), 0) if current else 0
                if row.expected_quantity is not None and row.expected_quantity != level:
                    _error(self.errors, number, self.column("expected_quantity"),
                           f"账面数量 {row.expected_quantity} 与当前库存 {level} 不符：盘点之后库存已有变动")
                    continue
                if row.quantity != level:
                    counts.append((warehouse_id, row, merged))
                    status = "updated" if status == "unchanged" else status
            self.report.outcomes.append((number, row.sku, status))
        if self.errors:
            return
        self._write(creates, updates, settings, renamed, categories)
        # Events in the order the same changes made one request at a time would give:
        # a product exists and has its thresholds before its counts move.
        self._announce([p["id"] for p in creates], "product.created")
        self._announce([p["id"] for p in updates], "product.updated")
        self._announce_lows(settings, existing)
        self._count(counts)
        tally = Counter(status for _, _, status in self.report.outcomes)
        self.report.created, self.report.updated, self.report.unchanged = (
            tally["created"], tally["updated"], tally["unchanged"])
        self.report.stock_adjusted = len(counts)

    def _new(self, number: int, row: ImportRow, given: dict) -> dict | None:
        missing = [name for name in REQUIRED_FOR_NEW if given.get(name) is None]
        for name in missing:
            _error(self.errors, number, self.column(name) if name in self.columns else None,
                   f"新商品（SKU {row.sku}）必须有{'名称' if name == 'name' else '价格'}")
        if row.expected_quantity not in (None, 0):
            _error(self.errors, number, self.column("expected_quantity"),
                   f"账面数量 {row.expected_quantity} 与当前库存 0 不符：该 SKU 是新商品")
        merged = {"sku": row.sku, **dict.fromkeys(PRODUCT_FIELDS), "min_quantity": 0, "max_quantity": None,
                  "location": None, **{k: v for k, v in given.items() if k in PRODUCT_FIELDS + STOCK_SETTINGS}}
        if missing or row.expected_quantity not in (None, 0) or not self._thresholds_ok(number, merged):
            return None
        return merged

    def _thresholds_ok(self, number: int, merged: dict) -> bool:
        if merged["max_quantity"] is not None and merged["max_quantity"] < merged["min_quantity"]:
            column = "max_quantity" if "max_quantity" in self.columns else "min_quantity"
            _error(self.errors, number, self.column(column) if column in self.columns else None,
                   f"最高库存 {merged['max_quantity']} 不能小于最低库存 {merged['min_quantity']}")
            return False
        return True

    def _lock_existing(self, skus: list[str]) -> dict[str, dict]:
        """The live products these SKUs name, with their stock rows, locked in id order
        (product, then its stock: the order every write takes)."""
        ids: list[int] = []
        for start in range(0, len(skus), CHUNK):
            chunk = skus[start:start + CHUNK]
            ids += db.session.scalars(select(Product.id).where(Product.sku.in_(chunk))).all()
        ids.sort()
        found: dict[str, dict] = {}
        for start in range(0, len(ids), CHUNK):
            statement = (select(Product.id, Product.sku, *(getattr(Product, k) for k in PRODUCT_FIELDS),
                                *(getattr(Stock, k) for k in STOCK_SETTINGS), Stock.quantity)
                         .join(Stock).where(Product.id.in_(ids[start:start + CHUNK])).order_by(Product.id)
                         .with_for_update())
            for row in db.session.execute(statement).mappings():
                found[row["sku"]] = dict(row)
        return found

    def _levels(self, ids: list[int]) -> dict[tuple[int, int], int]:
        """(product id, warehouse id) → the level's quantity, for products whose stock rows
        this import holds locked (every change of a level holds its product's lock)."""
        found: dict[tuple[int, int], int] = {}
        for start in range(0, len(ids), CHUNK):
            found.update({(product_id, warehouse_id): quantity for product_id, warehouse_id, quantity in
                          db.session.execute(select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.quantity)
                                             .where(StockLevel.product_id.in_(ids[start:start + CHUNK])))})
        return found

    def _check_barcodes(self) -> None:
        """A barcode set by a row must be nobody else's: not another row's, not another
        live product's (a deleted product has none). Moving a barcode from one product to
        another takes two imports (clear it, then set it), as with two PUTs."""
        claimed: dict[str, tuple[int, str]] = {}
        for number, row in self.rows:
            if row.barcode is None:
                continue
            if row.barcode in claimed:
                _error(self.errors, number, self.column("barcode"), f"条码与第 {claimed[row.barcode][0]} 行重复")
            else:
                claimed[row.barcode] = (number, row.sku)
        codes = list(claimed)
        for start in range(0, len(codes), CHUNK):
            holders = db.session.execute(select(Product.barcode, Product.sku).where(
                Product.barcode.in_(codes[start:start + CHUNK])))
            for barcode, sku in holders:
                number, claimant = claimed[barcode]
                if sku != claimant:
                    _error(self.errors, number, self.column("barcode"), f"条码已被商品 {sku} 使用")

    def _write(self, creates: list[dict], updates: list[dict], settings: list[dict], renamed: list[dict],
               categories: Counter) -> None:
        """New products with their stock rows, then changed ones (each bumping its
        version: an edit based on the old ETag gets 412; a new name copied to its
        levels), then the category counts."""
        connection = db.session.connection()
        now = utcnow()
        if creates:
            connection.execute(insert(Product), [
                {"sku": p["sku"], **{k: p[k] for k in PRODUCT_FIELDS}, "created_at": now, "updated_at": now,
                 "version": 1} for p in creates])
            new_ids = self._ids_of([p["sku"] for p in creates])
            connection.execute(insert(Stock), [
                {"product_id": new_ids[p["sku"]], "quantity": 0, **{k: p[k] for k in STOCK_SETTINGS},
                 "updated_at": now} for p in creates])
            for product in creates:
                product["id"], product["quantity"] = new_ids[product["sku"]], 0
                categories[(product["category"] or NO_CATEGORY, shard_of(product["id"]))] += 1
        if updates:
            connection.execute(
                update(Product).where(Product.id == bindparam("product_id"))
                .values(**{k: bindparam(k) for k in PRODUCT_FIELDS}, updated_at=now, version=Product.version + 1),
                [{"product_id": p["id"], **{k: p[k] for k in PRODUCT_FIELDS}} for p in updates])
        if renamed:
            connection.execute(update(StockLevel).where(StockLevel.product_id == bindparam("levels_of"))
                               .values(name=bindparam("new_name")),
                               [{"levels_of": p["id"], "new_name": p["name"]} for p in renamed])
        if settings:
            connection.execute(
                update(Stock).where(Stock.product_id == bindparam("stock_of"))
                .values(**{k: bindparam(k) for k in STOCK_SETTINGS}, updated_at=now),
                [{"stock_of": p["id"], **{k: p[k] for k in STOCK_SETTINGS}} for p in settings])
        for category, shard in sorted(categories):  # counter rows in one order, as product_service takes them
            if categories[(category, shard)]:
                count_live(category, shard, categories[(category, shard)])

    def _announce(self, ids: list[int], event_type: str) -> None:
        """Each created or changed product's event, as it reads with the file's fields
        written and before its counts (each count's own `stock.changed` follows), in the
        import's transaction (services/event_service.py)."""
        for start in range(0, len(ids), CHUNK):
            events = EventBatch()
            rows = db.session.execute(views.PRODUCT.where(Product.id.in_(ids[start:start + CHUNK]))).mappings()
            for row in rows:
                product = ProductOut.model_validate(views.shaped(row)).model_dump(mode="json", by_alias=True)
                events.add(event_type, product, product_id=product["id"])
            events.write()

    def _announce_lows(self, settings: list[dict], existing: dict[str, dict]) -> None:
        """`stock.low` for each product a new minimum made low at its count as it stands,
        as a PATCH of the minimum would (a count in the file moves it afterwards)."""
        events = EventBatch()
        for product in settings:
            quantity, before = product["quantity"], existing[product["sku"]]
            stock_service.announce_low(SimpleNamespace(
                product_id=product["id"], product=SimpleNamespace(sku=product["sku"], name=product["name"]),
                quantity=quantity, min_quantity=product["min_quantity"],
                is_low=is_low_level(quantity, product["min_quantity"])),
                is_low_level(quantity, before["min_quantity"]), events.add)
        events.write()

    def _ids_of(self, skus: list[str]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for start in range(0, len(skus), CHUNK):
            ids.update(db.session.execute(
                select(Product.sku, Product.id).where(Product.sku.in_(skus[start:start + CHUNK]))).all())
        return ids

    def _count(self, counts: list[tuple[int, ImportRow, dict]]) -> None:
        """Each count as a stocktake `adjust` of its level, by the caller."""
        stock_service.record_counts(
            [StockAdjust(product_id=product["id"], warehouse_id=warehouse_id, quantity=row.quantity,
                         reason=STOCKTAKE_REASON, expected_quantity=row.expected_quantity)
             for warehouse_id, row, product in counts],
            self.actor, lambda done, total: self._progress("counting stock", done, total))

    def _progress(self, stage: str, done: int, total: int) -> None:
        """Report a step done: to the CLI's progress bar, and to gunicorn's master (a large
        import on a busy database may run past the worker timeout while it progresses)."""
        if done % PROGRESS_EVERY == 0 or done == total:
            heartbeat.beat()
            if self.progress is not None:
                self.progress(stage, done, total)
