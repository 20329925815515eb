"""Demo and benchmark data: products and a long, consistent movement history,
written with bulk inserts in one transaction."""
import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select

from db import db
from db.schema import refresh_planner_statistics
from models import (
    GENESIS_HASH,
    HASH_VERSION,
    LEVEL_SIGN,
    TRANSFER_ACTIONS,
    Product,
    Stock,
    StockLevel,
    StockLog,
    Warehouse,
    chain_hash,
)
from models.shards import SHARDS
from models.types import utcnow
from services.ledger_service import TOTALS, DailyTotals, count_movement
from services.level_counts import LevelTally
from services.product_counts import count_live
from services.transaction import run_in_write_transaction

CATEGORIES = ["食品", "饮料", "日用品", "电子产品", "文具", "服装", "家居", "母婴"]
LOCATIONS = [f"{zone}区-{shelf:02d}" for zone in "ABCD" for shelf in range(1, 21)]
REASONS = {"in": ["采购入库", "退货入库", "调拨入库"], "out": ["销售出库", "领用出库", "报损"], "adjust": ["月末盘点", "抽盘"],
           "transfer": ["门店补货", "仓间调拨"]}
OPERATORS = ["张三", "李四", "王五", "赵六"]
CHUNK = 5000
HISTORY_DAYS = 90
# With several warehouses, the share of draws that move stock between two of them
# (two ledger rows each) instead of receiving or issuing it.
TRANSFER_SHARE = 0.05
DIGITS = "零一二三四五六七八九"


@dataclass
class _Entry:
    """One ledger row being built; carries the fields `chain_hash` reads."""

    product_id: int
    seq: int
    action: str
    quantity: int
    before_quantity: int
    after_quantity: int
    reason: str
    operator: str
    sku: str
    product_name: str
    created_at: object
    prev_hash: str
    warehouse_id: int
    warehouse_code: str
    level_before: int
    level_after: int
    transfer_id: str | None
    hash: str = ""
    on_behalf_of: str | None = None
    reservation_id: int | None = None
    hash_version: int = HASH_VERSION


@dataclass(slots=True)
class _Book:
    """One product while its history is written: its levels (by index into the seed's
    warehouses; the default one, index 0, always has one), total, chain end and running totals."""

    product_id: int
    sku: str
    name: str
    levels: dict[int, int] = field(default_factory=lambda: {0: 0})
    total: int = 0
    seq: int = 0
    hash: str = GENESIS_HASH
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOTALS, 0))

    def level(self, place: int) -> int:
        return self.levels.get(place, 0)

    def write(self, action: str, quantity: int, warehouse: Warehouse, place: int, when, reason: str, operator: str,
              transfer_id: str | None = None) -> _Entry:
        """The next row of this product's chain; its level and total follow (a transfer's
        rows leave the total as it was)."""
        before = self.level(place)
        after = before + LEVEL_SIGN[action] * quantity
        total = self.total if action in TRANSFER_ACTIONS else self.total + after - before
        entry = _Entry(
            product_id=self.product_id, seq=self.seq + 1, action=action, quantity=quantity,
            before_quantity=self.total, after_quantity=total, reason=reason, operator=operator, sku=self.sku,
            product_name=self.name, created_at=when, prev_hash=self.hash, warehouse_id=warehouse.id,
            warehouse_code=warehouse.code, level_before=before, level_after=after, transfer_id=transfer_id,
        )
        entry.hash = chain_hash(entry)
        self.levels[place], self.total, self.seq, self.hash = after, total, entry.seq, entry.hash
        return entry


def seed(products: int, movements: int, rng_seed: int | None = None, warehouses: int = 1) -> dict:
    """Insert `products` products and `movements` chained movements spread over the
    last 90 days, oldest first, so ids, sequence numbers and times agree. The stock is
    kept in `warehouses` warehouses: the default one and WH-02, WH-03 … (made when
    missing), each movement in one drawn at random, with a share of transfers between
    them; with one, everything is in the default warehouse, and the same `rng_seed`
    gives the same data as before warehouses existed."""
    rng = random.Random(rng_seed)
    batch = secrets.token_hex(3).upper()

    def work() -> dict:
        now = utcnow()
        rows = [{
            "name": f"{rng.choice(CATEGORIES)}示例商品{i:06d}",
            "description": "批量生成的示例数据",
            "price": Decimal(rng.randint(100, 99999)) / 100,
            "category": rng.choice(CATEGORIES),
            "sku": f"SEED-{batch}-{i:06d}",
            "created_at": now - timedelta(days=HISTORY_DAYS + 1),
            "updated_at": now - timedelta(days=HISTORY_DAYS + 1),
            "version": 1,
        } for i in range(products)]
        for start in range(0, len(rows), CHUNK):
            db.session.execute(insert(Product), rows[start:start + CHUNK])
        for category, shard, count in db.session.execute(
                select(Product.category, Product.id % SHARDS, func.count())
                .where(Product.sku.like(f"SEED-{batch}-%")).group_by(Product.category, Product.id % SHARDS)):
            count_live(category, shard, count)
        books = [_Book(pid, sku, name) for pid, sku, name in db.session.execute(
            select(Product.id, Product.sku, Product.name).where(Product.sku.like(f"SEED-{batch}-%")).order_by(Product.id))]
        places = _warehouses(warehouses)
        daily = _write_history(rng, books, places, movements, now - timedelta(days=HISTORY_DAYS))
        stock_rows = [{
            "product_id": book.product_id, "quantity": book.total, "min_quantity": rng.choice([0, 5, 10, 20, 50]),
            "location": rng.choice(LOCATIONS), "updated_at": now, **book.totals,
        } for book in books]
        level_rows = [{"product_id": book.product_id, "warehouse_id": places[place].id, "name": book.name,
                       "sku": book.sku, "quantity": quantity, "updated_at": now}
                      for book in books for place, quantity in sorted(book.levels.items())]
        for table, table_rows in ((Stock, stock_rows), (StockLevel, level_rows)):
            for start in range(0, len(table_rows), CHUNK):
                db.session.execute(insert(table), table_rows[start:start + CHUNK])
        created = LevelTally()
        for row in level_rows:
            created.add(row["product_id"], row["warehouse_id"])
        created.write(db.session.connection())
        daily.write(db.session.connection())  # merged into days that may already have movements
        return {"products": len(books), "movements": movements, "warehouses": len(places),
                "sku_prefix": f"SEED-{batch}-"}

    summary = run_in_write_transaction(work)
    refresh_planner_statistics()
    return summary


def _write_history(rng: random.Random, books: list[_Book], places: list[Warehouse], movements: int,
                   start) -> DailyTotals:
    """Insert `movements` ledger rows, evenly spaced from `start`, in chunks; each product's
    book follows its rows. Answers the days' totals, for the caller to write once."""
    daily = DailyTotals()
    last_before = db.session.scalar(select(func.coalesce(func.max(StockLog.id), 0)))
    step = timedelta(days=HISTORY_DAYS) / max(movements, 1)
    written, pending = 0, []
    while written < movements:
        # Drawn in this order, and nothing more with one warehouse: a seed gives what it always gave.
        book = rng.choice(books)
        place = rng.randrange(len(places)) if len(places) > 1 else 0
        when = start + step * written
        if len(places) > 1 and movements - written >= 2 and book.level(place) > 0 and rng.random() < TRANSFER_SHARE:
            entries = _transfer(rng, book, place, places, when)
        else:
            action, quantity = _next_movement(rng, book.level(place))
            entries = [book.write(action, quantity, places[place], place, when, rng.choice(REASONS[action]),
                                  rng.choice(OPERATORS))]
        for entry in entries:
            count_movement(book.totals, daily.row(book.product_id, when.date()), entry.action, entry.quantity)
            pending.append(entry.__dict__)
        written += len(entries)
        if len(pending) >= CHUNK:
            db.session.execute(insert(StockLog), pending)
            pending = []
    if pending:
        db.session.execute(insert(StockLog), pending)
    # The ids the bulk inserts gave, by day: any other rows past `last_before` are real rows of their days too.
    day = func.date(StockLog.created_at)
    daily.bound_days((date.fromisoformat(str(each)), first, last) for each, first, last in db.session.execute(
        select(day, func.min(StockLog.id), func.max(StockLog.id)).where(StockLog.id > last_before).group_by(day)))
    return daily


def _next_movement(rng: random.Random, level: int) -> tuple[str, int]:
    """A plausible next movement of a level: mostly receipts and issues."""
    roll = rng.random()
    if level == 0 or roll < 0.45:
        return "in", rng.randint(1, 100)
    if roll < 0.92:
        return "out", rng.randint(1, min(level, 60))
    # a stocktake finds a small difference (never none: that writes no row)
    return "adjust", max(-level, rng.choice([-3, -2, -1, 1, 2, 3]))


def _transfer(rng: random.Random, book: _Book, place: int, places: list[Warehouse], when) -> list[_Entry]:
    """Part of a level moved to another warehouse, as the service writes it: a
    transfer_out and its transfer_in, consecutive, sharing reason, operator and id."""
    quantity = rng.randint(1, min(book.level(place), 30))
    destination = (place + rng.randrange(1, len(places))) % len(places)
    reason, operator, transfer_id = rng.choice(REASONS["transfer"]), rng.choice(OPERATORS), uuid.uuid4().hex
    return [book.write("transfer_out", quantity, places[place], place, when, reason, operator, transfer_id),
            book.write("transfer_in", quantity, places[destination], destination, when, reason, operator, transfer_id)]


def _warehouses(count: int) -> list[Warehouse]:
    """The default warehouse, then WH-02, WH-03 … up to `count`, each made (named 二号仓 …)
    when no live warehouse has its code."""
    places = [db.session.scalars(select(Warehouse).where(Warehouse.is_default.is_(True))).one()]
    for number in range(2, count + 1):
        code = f"WH-{number:02d}"
        warehouse = db.session.scalars(select(Warehouse).where(Warehouse.code == code)).one_or_none()
        if warehouse is None:
            warehouse = Warehouse(code=code, name=f"{_numeral(number)}号仓")
            db.session.add(warehouse)
            db.session.flush()
        places.append(warehouse)
    return places


def _numeral(number: int) -> str:
    """二, 十, 十二, 二十三 …: a number below 100 in Chinese."""
    tens, ones = divmod(number, 10)
    return (DIGITS[tens] if tens > 1 else "") + ("十" if tens else "") + (DIGITS[ones] if ones else "")
