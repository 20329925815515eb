"""Demo and benchmark data: products and a long, consistent movement history,
written with bulk inserts in one transaction."""
import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select

from db import db
from db.schema import refresh_planner_statistics
from models import GENESIS_HASH, HASH_VERSION, Product, Stock, StockLevel, StockLog, Warehouse, chain_hash
from models.shards import SHARDS
from models.types import utcnow
from services.ledger_service import TOTALS, DailyTotals, count_movement
from services.product_counts import count_live
from services.transaction import run_in_write_transaction

CATEGORIES = ["食品", "饮料", "日用品", "电子产品", "文具", "服装", "家居", "母婴"]
LOCATIONS = [f"{zone}区-{shelf:02d}" for zone in "ABCD" for shelf in range(1, 21)]
REASONS = {"in": ["采购入库", "退货入库", "调拨入库"], "out": ["销售出库", "领用出库", "报损"], "adjust": ["月末盘点", "抽盘"]}
CHUNK = 5000
HISTORY_DAYS = 90


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
    hash: str = ""
    on_behalf_of: str | None = None
    transfer_id: str | None = None
    reservation_id: int | None = None
    hash_version: int = HASH_VERSION

    @property
    def level_before(self) -> int:  # kept in one warehouse: its level is the total
        return self.before_quantity

    @property
    def level_after(self) -> int:
        return self.after_quantity

    def row(self) -> dict:
        return {**self.__dict__, "level_before": self.level_before, "level_after": self.level_after}


def seed(products: int, movements: int, rng_seed: int | None = None) -> dict:
    """Insert `products` products and `movements` chained movements spread over the
    last 90 days, oldest first, so ids, sequence numbers and times agree; all stock is
    kept in the default warehouse."""
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
        catalogue = db.session.execute(
            select(Product.id, Product.sku, Product.name).where(Product.sku.like(f"SEED-{batch}-%")).order_by(Product.id)
        ).all()
        warehouse = db.session.execute(select(Warehouse.id, Warehouse.code).where(Warehouse.is_default.is_(True))).one()
        levels = {pid: 0 for pid, _, _ in catalogue}
        chains = {pid: (0, GENESIS_HASH) for pid, _, _ in catalogue}
        totals = {pid: dict.fromkeys(TOTALS, 0) for pid, _, _ in catalogue}
        daily = DailyTotals()
        step = timedelta(days=HISTORY_DAYS) / max(movements, 1)
        pending = []
        for index in range(movements):
            pid, sku, name = rng.choice(catalogue)
            entry = _next_entry(rng, pid, sku, name, levels[pid], chains[pid], now - timedelta(days=HISTORY_DAYS) + step * index,
                                warehouse)
            levels[pid] = entry.after_quantity
            chains[pid] = (entry.seq, entry.hash)
            count_movement(totals[pid], daily.row(pid, entry.created_at.date()), entry.action, entry.quantity)
            pending.append(entry.row())
            if len(pending) == CHUNK:
                db.session.execute(insert(StockLog), pending)
                pending = []
        if pending:
            db.session.execute(insert(StockLog), pending)
        stock_rows = [{
            "product_id": pid, "quantity": levels[pid], "min_quantity": rng.choice([0, 5, 10, 20, 50]),
            "location": rng.choice(LOCATIONS), "updated_at": now, **totals[pid],
        } for pid, _, _ in catalogue]
        for start in range(0, len(stock_rows), CHUNK):
            db.session.execute(insert(Stock), stock_rows[start:start + CHUNK])
            db.session.execute(insert(StockLevel), [
                {"product_id": row["product_id"], "warehouse_id": warehouse.id, "quantity": row["quantity"],
                 "updated_at": now} for row in stock_rows[start:start + CHUNK]])
        daily.write(db.session.connection())  # merged into days that may already have movements
        return {"products": len(catalogue), "movements": movements, "sku_prefix": f"SEED-{batch}-"}

    summary = run_in_write_transaction(work)
    refresh_planner_statistics()
    return summary


def _next_entry(rng: random.Random, pid: int, sku: str, name: str, level: int, chain: tuple[int, str], when,
                warehouse) -> _Entry:
    """A plausible next movement for a product at `level`: mostly receipts and issues."""
    roll = rng.random()
    if level == 0 or roll < 0.45:
        action, quantity = "in", rng.randint(1, 100)
    elif roll < 0.92:
        action, quantity = "out", rng.randint(1, min(level, 60))
    else:  # a stocktake finds a small difference (never none: that writes no row)
        action, quantity = "adjust", max(-level, rng.choice([-3, -2, -1, 1, 2, 3]))
    after = level - quantity if action == "out" else level + quantity
    seq, prev_hash = chain
    entry = _Entry(
        product_id=pid, seq=seq + 1, action=action, quantity=quantity, before_quantity=level,
        after_quantity=after, reason=rng.choice(REASONS[action]), operator=rng.choice(["张三", "李四", "王五", "赵六"]),
        sku=sku, product_name=name, created_at=when, prev_hash=prev_hash,
        warehouse_id=warehouse.id, warehouse_code=warehouse.code,
    )
    entry.hash = chain_hash(entry)
    return entry
