"""Proving the ledger: every product's chain recomputed and held against its stock row."""
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import select

from db import db
from db.prepared import CounterUpsert
from models import GENESIS_HASH, MovementDaily, Stock, StockLog, chain_hash
from services.transaction import begin_snapshot
from utils.exceptions import NotFound

MAX_PROBLEMS = 1000
TOTALS = ("movements", "total_in", "total_out", "adjust_net", "units_moved")
DAILY_COLUMNS = tuple(f"{action}_{kind}" for action in ("in", "out", "adjust") for kind in ("movements", "quantity"))
# Adds one day's movements to its totals (`movement_daily`), in the caller's transaction.
DAILY_TOTALS = CounterUpsert(MovementDaily.__table__, "day", DAILY_COLUMNS)
STREAM_BATCH = 2000


class _Chain:
    """The running state of one product's chain while its rows stream past."""

    def __init__(self, product_id: int):
        self.product_id = product_id
        self.seq = 0
        self.id = 0
        self.hash = GENESIS_HASH
        self.after = 0
        self.totals = dict.fromkeys(TOTALS, 0)


def count_movement(product_totals: dict[str, int], day_totals: dict[str, int], action: str, quantity: int) -> None:
    """Add one movement to the running totals its stock row and its day hold."""
    product_totals["movements"] += 1
    product_totals[{"in": "total_in", "out": "total_out", "adjust": "adjust_net"}[action]] += quantity
    product_totals["units_moved"] += abs(quantity)
    day_totals[f"{action}_movements"] += 1
    day_totals[f"{action}_quantity"] += quantity


def verify(product_id: int | None = None) -> dict[str, Any]:
    """Recompute sequence, before/after continuity and hashes of every chain (or one),
    and compare each chain's last `after_quantity` and running totals with the stock
    row, and (for the whole ledger) each day's totals with `movement_daily`. Rows stream in
    (product_id, seq) order through the unique index, so memory stays flat; ids must rise
    with seq, as the log lists movements by id (on a Galera cluster too: a product's
    changes are serialised by its stock row, and applying a replicated row raises each
    node's auto-increment counter past its id; docs/cluster.md). Every read sees one snapshot, so changes
    committed meanwhile are never taken for a broken ledger."""
    begin_snapshot()
    stock_rows = select(Stock.product_id, Stock.quantity, *(getattr(Stock, name) for name in TOTALS)).order_by(Stock.product_id)
    logs = select(*StockLog.__table__.columns).order_by(StockLog.product_id, StockLog.seq)
    if product_id is not None:
        stock_rows = stock_rows.where(Stock.product_id == product_id)
        logs = logs.where(StockLog.product_id == product_id)
    stock = {row[0]: row[1:] for row in db.session.execute(stock_rows)}
    if product_id is not None and not stock:
        raise NotFound("商品不存在", {"product_id": product_id})

    problems: list[dict[str, Any]] = []
    chains: dict[int, _Chain] = {}
    days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(DAILY_COLUMNS, 0))
    logs_checked = 0
    for entry in db.session.execute(logs.execution_options(yield_per=STREAM_BATCH)):
        chain = chains.setdefault(entry.product_id, _Chain(entry.product_id))
        for problem in _entry_problems(chain, entry):
            problems.append({"product_id": entry.product_id, "seq": entry.seq, "problem": problem})
        chain.seq, chain.id, chain.hash, chain.after = entry.seq, entry.id, entry.hash, entry.after_quantity
        count_movement(chain.totals, days[entry.created_at.date()], entry.action, entry.quantity)
        logs_checked += 1

    for pid, (quantity, *totals) in stock.items():
        chain = chains.get(pid) or _Chain(pid)
        if chain.after != quantity:
            problems.append({
                "product_id": pid, "seq": chain.seq,
                "problem": f"库存为 {quantity}，流水最后结余为 {chain.after}",
            })
        if dict(zip(TOTALS, totals, strict=True)) != chain.totals:
            problems.append({"product_id": pid, "seq": chain.seq, "problem": "库存行的累计数与流水不符"})
    if product_id is None:
        problems += _daily_problems(days)
    for pid in chains.keys() - stock.keys():
        problems.append({"product_id": pid, "seq": chains[pid].seq, "problem": "有流水但没有库存行"})

    problems.sort(key=lambda p: (p["product_id"], p["seq"]))
    return {
        "products_checked": len(stock),
        "logs_checked": logs_checked,
        "problems": problems[:MAX_PROBLEMS],
        "problems_total": len(problems),
    }


def _daily_problems(days: dict[date, dict[str, int]]) -> list[dict[str, Any]]:
    """Each day's totals row against the sums of that day's ledger rows."""
    stored = {row.day: {c: getattr(row, c) for c in DAILY_COLUMNS} for row in db.session.scalars(select(MovementDaily))}
    return [
        {"product_id": 0, "seq": 0, "problem": f"{day} 的日汇总与流水不符"}
        for day in sorted(stored.keys() | days.keys())
        if stored.get(day, dict.fromkeys(DAILY_COLUMNS, 0)) != days.get(day, dict.fromkeys(DAILY_COLUMNS, 0))
    ]


def _entry_problems(chain: _Chain, entry) -> list[str]:
    problems = []
    if entry.seq != chain.seq + 1:
        problems.append(f"序号不连续：应为 {chain.seq + 1}，实为 {entry.seq}")
    if entry.id <= chain.id:
        problems.append(f"编号 {entry.id} 不大于上一条的 {chain.id}：流水的先后被改动过")
    if entry.before_quantity != chain.after:
        problems.append(f"期初 {entry.before_quantity} 与上一条结余 {chain.after} 不符")
    delta = -entry.quantity if entry.action == "out" else entry.quantity
    if entry.after_quantity != entry.before_quantity + delta:
        problems.append("结余与期初、数量不符")
    if entry.prev_hash != chain.hash:
        problems.append("prev_hash 与上一条的 hash 不符")
    if entry.hash != chain_hash(entry):
        problems.append("hash 与内容不符：该行被改动过")
    return problems
