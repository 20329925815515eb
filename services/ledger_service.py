"""Proving the ledger: every product's chain recomputed and held against its stock row,
and within it each warehouse's level against its level row; one bounded page of
products at a time (the API) or the whole ledger in one walk (the CLI)."""
import time
from collections import defaultdict, namedtuple
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from operator import attrgetter
from typing import Any, Protocol

from sqlalchemy import DateTime, and_, func, or_, select, type_coerce

from db import db
from db.prepared import CounterUpsert
from models import (
    ACTIONS,
    GENESIS_HASH,
    LEVEL_SIGN,
    TRANSFER_ACTIONS,
    MovementDaily,
    Reservation,
    Stock,
    StockLevel,
    StockLog,
    chain_hash,
    shard_of,
)
from services.log_service import daily_id_ranges, end_of
from services.statistics_service import ledger_per_day
from services.transaction import begin_snapshot
from utils.exceptions import NotFound

MAX_PROBLEMS = 1000
TOTALS = ("movements", "total_in", "total_out", "adjust_net", "units_moved")
DAILY_COLUMNS = tuple(f"{action}_{kind}" for action in ACTIONS for kind in ("movements", "quantity"))
# The stock row's running total each counted action adds to (a transfer adds to `movements` only).
ACTION_TOTAL = {"in": "total_in", "out": "total_out", "adjust": "adjust_net"}
# Adds movements to the totals of their day and shard (`movement_daily`), in the caller's
# transaction, and widens the range of ledger ids they count to take in theirs.
DAILY_TOTALS = CounterUpsert(MovementDaily.__table__, ("day", "shard"), DAILY_COLUMNS,
                             lowest=("first_id",), highest=("last_id",))
STOCK_COLUMNS = (Stock.product_id, Stock.quantity, Stock.reserved, *(getattr(Stock, name) for name in TOTALS))
# What a level's active reservations hold, as its `reserved` must keep it (past-due ones
# included: the next write of the product takes them off both).
_ACTIVE_HOLDS = (
    select(func.coalesce(func.sum(Reservation.quantity), 0))
    .where(Reservation.product_id == StockLevel.product_id, Reservation.warehouse_id == StockLevel.warehouse_id,
           Reservation.status == "active")
    .scalar_subquery())
# The ledger's columns as verify reads them: `created_at` naive (only its digits are
# hashed; tagging it UTC cost a new datetime per row), each row a named tuple, whose
# fields read at C speed where a SQLAlchemy row's cost ~0.5 µs each (~35 per row).
LEDGER_COLUMNS = tuple(type_coerce(column, DateTime).label(column.key) if column.key == "created_at" else column
                       for column in StockLog.__table__.columns)
LedgerRow = namedtuple("LedgerRow", [column.key for column in LEDGER_COLUMNS])
# Rows per keyset read: each read is a short statement of its own, so a walk that
# stops early leaves no half-read result on the connection, and a page overruns its time
# by at most one read.
CHUNK_ROWS = 2000
# Bytes of a sort record under which MariaDB sorts whole ledger rows (`_ledger_stream`).
SORT_WHOLE_ROWS = 16384


@dataclass(frozen=True)
class Budget:
    """What one page of verification may spend. It stops after the product that reaches
    either limit, so a product's chain is always checked whole, in one snapshot."""

    rows: int
    seconds: float


class _Chain:
    """The running state of one product's chain while its rows stream past."""

    def __init__(self, product_id: int):
        self.product_id = product_id
        self.seq = 0
        self.id = 0
        self.hash = GENESIS_HASH
        self.after = 0
        self.totals = dict.fromkeys(TOTALS, 0)
        self.levels: dict[int, int] = {}  # warehouse id → its level after the rows so far
        self.open_transfer = None  # a transfer_out row still waiting for its transfer_in


class _Walk:
    """What a walk has checked so far, and where the next page starts."""

    def __init__(self):
        self.products = 0
        self.logs = 0
        self.rows = 0  # ledger rows read: the logs checked, then those the daily totals add up
        self.problems: list[dict[str, Any]] = []
        self.last_product_id: int | None = None

    def report(self, next_after: int | None = None, next_after_day: date | None = None) -> dict[str, Any]:
        self.problems.sort(key=lambda p: (p["product_id"], p["seq"]))
        return {
            "products_checked": self.products,
            "logs_checked": self.logs,
            "problems": self.problems[:MAX_PROBLEMS],
            "problems_total": len(self.problems),
            "next_after": next_after,
            "next_after_day": next_after_day.isoformat() if next_after_day else None,
            "complete": next_after is None and next_after_day is None,
        }


class DailyTotals:
    """Movements of one transaction added to `movement_daily` at `write`, row by row in
    (day, shard) order: transactions that add to several rows (batches) take them in one
    order, so they cannot wait on each other in a cycle. Each row also carries the range
    of the ledger ids it adds: given row by row (`add`), or by day once a bulk insert's
    rows are in (`bound_days`)."""

    def __init__(self):
        self.rows: dict[tuple[date, int], dict[str, int]] = defaultdict(
            lambda: {**dict.fromkeys(DAILY_COLUMNS, 0), "first_id": None, "last_id": None})

    def row(self, product_id: int, day: date) -> dict[str, int]:
        """The sums a movement of this product on this day adds to."""
        return self.rows[(day, shard_of(product_id))]

    def add(self, product_id: int, day: date, action: str, quantity: int, log_id: int) -> None:
        row = self.row(product_id, day)
        row[f"{action}_movements"] += 1
        row[f"{action}_quantity"] += quantity
        row["first_id"] = min(row["first_id"] or log_id, log_id)
        row["last_id"] = max(row["last_id"] or log_id, log_id)

    def bound_days(self, bounds: Iterable[tuple[date, int, int]]) -> None:
        """Give every row of each day the (day, first id, last id) of the ledger rows
        written: wider than a shard's own, which is still exact where pages read them,
        a day's least and greatest over its shards."""
        by_day = {day: (first, last) for day, first, last in bounds}
        for (day, _), row in self.rows.items():
            row["first_id"], row["last_id"] = by_day[day]

    def write(self, connection) -> None:
        for (day, shard), sums in sorted(self.rows.items()):
            DAILY_TOTALS.run(connection, day=day, shard=shard, **sums)
        self.rows.clear()


def count_for_product(totals: dict[str, int], action: str, quantity: int) -> None:
    """Add one movement to the running totals its stock row holds."""
    totals["movements"] += 1
    if action in ACTION_TOTAL:
        totals[ACTION_TOTAL[action]] += quantity
        totals["units_moved"] += abs(quantity)


def count_movement(product_totals: dict[str, int], day_totals: dict[str, int], action: str, quantity: int) -> None:
    """Add one movement to the running totals its stock row and its day hold."""
    count_for_product(product_totals, action, quantity)
    day_totals[f"{action}_movements"] += 1
    day_totals[f"{action}_quantity"] += quantity


def verify(product_id: int | None = None, after: int = 0, after_day: date | None = None,
           budget: Budget | None = None, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Check the products after `after` in id order (or only `product_id`): sequence,
    before/after continuity and hash of every row, and each chain's end and running totals
    against its stock row, each warehouse's level row by row and against its level row, and
    the pairing of transfers (`_level_problems`); then each day's totals (`movement_daily`) against the ledger, in
    chunks of days (from the day after `after_day` when given, which skips the products).
    With a `budget` it stops after the product or chunk of days that spends it and answers
    where the next page starts (`next_after` or `next_after_day`). Ids must rise with seq,
    as the log lists movements by id (on a Galera cluster too: a product's changes are
    serialised by its stock row, and applying a replicated row raises each node's
    auto-increment counter past its id; docs/cluster.md). A page reads one snapshot, so
    changes committed meanwhile are never taken for a broken ledger; a product is always
    checked within one page."""
    started = time.monotonic()
    begin_snapshot()
    walk = _Walk()
    if product_id is not None:
        stock = _stock_rows(product_id - 1, product_id)
        if not stock:
            raise NotFound("商品不存在", {"product_id": product_id})
        _check_products(walk, stock, _ledger_rows(product_id - 1, product_id),
                        _StoredLevels(_level_rows(product_id - 1, product_id)))
        return walk.report()

    def spent() -> bool:
        return budget is not None and (walk.rows >= budget.rows or time.monotonic() - started >= budget.seconds)

    if after_day is None:
        if not _check_products(walk, *_product_sources(after, budget), stop=spent, progress=progress):
            return walk.report(next_after=walk.last_product_id)
        after_day = date.min
    while walk.rows == 0 or not spent():
        last_day = _day_chunk_end(after_day)
        walk.problems += _daily_problems(after_day, last_day, walk)
        if last_day is None:
            return walk.report()
        after_day = last_day
    return walk.report(next_after_day=after_day)


def _product_sources(after: int, budget: Budget | None) -> tuple[Iterable, Iterable, "_StoredLevels"]:
    """The stock rows, ledger rows and level rows of the products after `after`. A page
    reads each in keyset chunks as it reaches them, so it reads only what it checks. A
    walk without a budget reads everything: the stock and level rows first, then the
    ledger in one ordered statement streamed from the server, which holds the connection
    until its last row (`_ledger_stream`)."""
    if budget is not None:
        return _chunked_stock_rows(after), _ledger_rows(after), _StoredLevels(_level_rows(after, None))
    stock, levels = list(_chunked_stock_rows(after)), list(_level_rows(after, None))
    return stock, _ledger_stream(after), _StoredLevels(iter(levels))


def _check_products(walk: _Walk, stock: Iterable, ledger: Iterable, levels: "_StoredLevels",
                    stop: Callable[[], bool] = lambda: False, progress: Callable[[int, int], None] | None = None) -> bool:
    """Check products in id order until `stop` says the budget is spent; True when every
    one was checked."""
    for product_id, stock_row, entries in _by_product(stock, ledger):
        walk.problems += product_problems(product_id, stock_row, entries, walk, levels.of(product_id))
        walk.products += stock_row is not None
        walk.last_product_id = product_id
        if progress is not None:
            progress(walk.products, walk.logs)
        if stop():
            return False
    return True


def product_problems(product_id: int, stock_row, entries: Iterable, walk: _Walk,
                     stored_levels: "dict[int, _Level]") -> list[dict[str, Any]]:
    """Every check of one product: its chain row by row, then the chain's end and running
    totals against its stock row (None when the stock row is gone), and its levels against
    its level rows (`stored_levels`, by warehouse id), what those and the stock row keep
    reserved included."""
    problems = []
    chain = _Chain(product_id)
    for entry in entries:
        for problem in _entry_problems(chain, entry) + _level_problems(chain, entry):
            problems.append({"product_id": product_id, "seq": entry.seq, "problem": problem})
        chain.seq, chain.id, chain.hash, chain.after = entry.seq, entry.id, entry.hash, entry.after_quantity
        count_for_product(chain.totals, entry.action, entry.quantity)
        walk.logs += 1
        walk.rows += 1
    if stock_row is None:
        return [*problems, {"product_id": product_id, "seq": chain.seq, "problem": "有流水但没有库存行"}]
    _, quantity, reserved, *totals = stock_row
    if chain.after != quantity:
        problems.append({"product_id": product_id, "seq": chain.seq,
                         "problem": f"库存为 {quantity}，流水最后结余为 {chain.after}"})
    if dict(zip(TOTALS, totals, strict=True)) != chain.totals:
        problems.append({"product_id": product_id, "seq": chain.seq, "problem": "库存行的累计数与流水不符"})
    problems += [{"product_id": product_id, "seq": chain.seq, "problem": problem}
                 for problem in _stored_level_problems(chain, quantity, stored_levels)
                 + _reserved_problems(reserved, stored_levels)]
    return problems


def _level_problems(chain: _Chain, entry) -> list[str]:
    """A row against its warehouse's level so far, and a transfer's two rows against each other."""
    problems = []
    if entry.warehouse_id is None:
        return ["没有仓库"]
    previous = chain.levels.get(entry.warehouse_id, 0)
    if entry.level_before != previous:
        problems.append(f"仓库 {entry.warehouse_id} 的期初 {entry.level_before} 与该仓上一条结余 {previous} 不符")
    if entry.level_after != entry.level_before + LEVEL_SIGN.get(entry.action, 0) * entry.quantity:
        problems.append(f"仓库 {entry.warehouse_id} 的结余与期初、数量不符")
    chain.levels[entry.warehouse_id] = entry.level_after
    pending, chain.open_transfer = chain.open_transfer, None
    if entry.action == "transfer_out":
        chain.open_transfer = entry
    if pending is not None and not (
            entry.action == "transfer_in" and entry.transfer_id == pending.transfer_id
            and entry.quantity == pending.quantity and entry.warehouse_id != pending.warehouse_id):
        problems.append(f"调拨 {pending.transfer_id} 的调出没有紧随其后的同量调入")
    if entry.action == "transfer_in" and (pending is None or entry.transfer_id != pending.transfer_id):
        problems.append(f"调拨 {entry.transfer_id} 的调入没有对应的调出")
    if (entry.action in TRANSFER_ACTIONS) != (entry.transfer_id is not None):
        problems.append("调拨编号与动作不符")
    return problems


def _reserved_problems(reserved: int, stored: "dict[int, _Level]") -> list[str]:
    """Each level's `reserved` against its active reservations, and the product's against its levels'."""
    problems = [f"仓库 {warehouse_id} 的预留数 {level.reserved} 与有效预留之和 {level.holds} 不符"
                for warehouse_id, level in sorted(stored.items()) if level.reserved != level.holds]
    levels_reserved = sum(level.reserved for level in stored.values())
    if reserved != levels_reserved:
        problems.append(f"预留数 {reserved} 与各仓预留之和 {levels_reserved} 不符")
    return problems


def _stored_level_problems(chain: _Chain, total: int, stored: "dict[int, _Level]") -> list[str]:
    """The level rows against the ledger's last level in each warehouse, and their sum against the total."""
    problems = []
    if chain.open_transfer is not None:
        problems.append(f"调拨 {chain.open_transfer.transfer_id} 的调出没有对应的调入")
    for warehouse_id in sorted(stored.keys() | chain.levels.keys()):
        kept, logged = stored.get(warehouse_id), chain.levels.get(warehouse_id, 0)
        if kept is None or kept.quantity != logged:
            problems.append(f"仓库 {warehouse_id} 的库存为 {kept and kept.quantity}，该仓流水最后结余为 {logged}")
    if sum(level.quantity for level in stored.values()) != total:
        problems.append(f"各仓库存之和 {sum(level.quantity for level in stored.values())} 与总库存 {total} 不符")
    return problems


class _Level(Protocol):
    """A level row as verify reads it: its count, what it keeps reserved, what its active holds add up to."""

    quantity: int
    reserved: int
    holds: int


class _StoredLevels:
    """Level rows in (product_id, warehouse_id) order, taken as the walk reaches each product."""

    def __init__(self, rows: Iterator):
        self.rows = rows
        self.pending = next(self.rows, None)

    def of(self, product_id: int) -> "dict[int, _Level]":
        """Warehouse id → this product's level row (products come in id order)."""
        found = {}
        while self.pending is not None and self.pending.product_id <= product_id:
            if self.pending.product_id == product_id:
                found[self.pending.warehouse_id] = self.pending
            self.pending = next(self.rows, None)
        return found


def _level_rows(after: int, last: int | None) -> Iterator:
    rows = select(StockLevel.product_id, StockLevel.warehouse_id, StockLevel.quantity, StockLevel.reserved,
                  _ACTIVE_HOLDS.label("holds"))
    return _in_key_chunks(rows, StockLevel.product_id, StockLevel.warehouse_id, after, last)


def _in_key_chunks(rows, product_id, second, after: int, last: int | None) -> Iterator:
    """The rows of the products after `after` (up to `last`) in (product_id, second)
    order, read in keyset chunks: each chunk a short statement of its own."""
    rows = rows.order_by(product_id, second).limit(CHUNK_ROWS)
    if last is not None:
        rows = rows.where(product_id <= last)
    position = product_id > after
    while True:
        chunk = db.session.connection().execute(rows.where(position)).all()
        yield from chunk
        if len(chunk) < CHUNK_ROWS:
            return
        end_product, end_second = getattr(chunk[-1], product_id.key), getattr(chunk[-1], second.key)
        position = and_(product_id >= end_product, or_(product_id > end_product, second > end_second))


def _by_product(stock: Iterable, ledger: Iterable) -> Iterator[tuple[int, Any, Iterable]]:
    """(product id, its stock row or None, its ledger rows) in product id order, merging
    the stock rows with the ledger stream; a product without movements has no rows."""
    pending = iter(stock)
    row = next(pending, None)
    for product_id, entries in groupby(ledger, key=attrgetter("product_id")):
        while row is not None and row.product_id < product_id:
            yield row.product_id, row, ()
            row = next(pending, None)
        own = row if row is not None and row.product_id == product_id else None
        if own is not None:
            row = next(pending, None)
        yield product_id, own, entries
    while row is not None:
        yield row.product_id, row, ()
        row = next(pending, None)


def _stock_rows(after: int, last: int | None = None) -> list:
    """Stock rows of the products after `after` (up to `last`), at most one chunk."""
    rows = select(*STOCK_COLUMNS).where(Stock.product_id > after).order_by(Stock.product_id).limit(CHUNK_ROWS)
    if last is not None:
        rows = rows.where(Stock.product_id <= last)
    return db.session.connection().execute(rows).all()


def _chunked_stock_rows(after: int) -> Iterator:
    """Every stock row after `after` in product id order, read in keyset chunks."""
    while chunk := _stock_rows(after):
        yield from chunk
        after = chunk[-1].product_id


def _ledger_rows(after: int, last: int | None = None) -> Iterator:
    """Ledger rows of the products after `after` (up to `last`) in (product_id, seq)
    order, read in keyset chunks through the unique index."""
    return map(LedgerRow._make, _in_key_chunks(select(*LEDGER_COLUMNS), StockLog.product_id, StockLog.seq, after, last))


def _ledger_stream(after: int) -> Iterator:
    """Every ledger row of the products after `after` in (product_id, seq) order, from
    one statement streamed through a server-side cursor. Read through the unique index,
    each row is a random read into the table, which is kept in id (time) order: on a
    ledger larger than MariaDB's buffer pool, a disk read per row (docs/ledger.md). So
    MariaDB sorts the table instead, in one scan, carrying whole rows: a row may be longer
    than its `max_length_for_sort_data` (1024 bytes; a ledger row can hold nearly 4,000),
    and then it sorts row ids only and reads each row at random after all."""
    connection = db.session.connection()
    rows = select(*LEDGER_COLUMNS).where(StockLog.product_id > after).order_by(StockLog.product_id, StockLog.seq)
    whole_rows = connection.dialect.name == "mysql" and connection.dialect.is_mariadb
    if whole_rows:
        connection.exec_driver_sql(f"SET SESSION max_length_for_sort_data = {SORT_WHOLE_ROWS}")
    try:
        with connection.execute(rows.execution_options(yield_per=CHUNK_ROWS)) as result:
            yield from map(LedgerRow._make, result)
    finally:
        if whole_rows:
            connection.exec_driver_sql("SET SESSION max_length_for_sort_data = DEFAULT")


def _day_chunk_end(after_day: date) -> date | None:
    """The last day of the next chunk of days after `after_day`: as many as hold about
    CHUNK_ROWS movements by their totals rows; None when the chunk reaches past the last
    totals row (so it also covers ledger rows of any later day)."""
    movements = func.sum(sum(getattr(MovementDaily, f"{action}_movements") for action in ACTIONS))
    days = db.session.execute(select(MovementDaily.day, movements).where(MovementDaily.day > after_day)
                              .group_by(MovementDaily.day).order_by(MovementDaily.day).limit(CHUNK_ROWS)).all()
    counted = 0
    for day, day_movements in days:
        counted += day_movements
        if counted >= CHUNK_ROWS:
            return day
    return days[-1].day if len(days) == CHUNK_ROWS else None


def _daily_problems(after_day: date, last_day: date | None, walk: _Walk) -> list[dict[str, Any]]:
    """The totals of the days after `after_day` up to `last_day` (None: every later day),
    each day's shards summed, against the sums of those days' ledger rows, read from the
    index on `created_at`; and each day's range of ledger ids, where its rows know it."""
    empty = dict.fromkeys(DAILY_COLUMNS, 0)
    days: dict[date, dict[str, int]] = defaultdict(lambda: dict(empty))
    ledger_range = [StockLog.created_at >= end_of(after_day)] if after_day > date.min else []
    stored_range = [MovementDaily.day > after_day]
    if last_day is not None:
        ledger_range.append(StockLog.created_at < end_of(last_day))
        stored_range.append(MovementDaily.day <= last_day)
    for day, action, count, quantity in ledger_per_day(ledger_range):
        totals = days[date.fromisoformat(str(day))]
        totals[f"{action}_movements"] += count
        totals[f"{action}_quantity"] += int(quantity)
        walk.rows += count
    sums = db.session.execute(select(MovementDaily.day, *(func.sum(getattr(MovementDaily, c)) for c in DAILY_COLUMNS))
                              .where(*stored_range).group_by(MovementDaily.day))
    stored = {day: dict(zip(DAILY_COLUMNS, map(int, totals), strict=True)) for day, *totals in sums}
    problems = [
        {"product_id": 0, "seq": 0, "problem": f"{day} 的日汇总与流水不符"}
        for day in sorted(stored.keys() | days.keys())
        if stored.get(day, empty) != days.get(day, empty)
    ]
    ledger_day = func.date(StockLog.created_at)
    ranges = {date.fromisoformat(str(day)): (first, last) for day, first, last in db.session.execute(
        select(ledger_day, func.min(StockLog.id), func.max(StockLog.id)).where(*ledger_range).group_by(ledger_day))}
    problems += [
        {"product_id": 0, "seq": 0, "problem": f"{day} 的日汇总编号范围 {first}–{last} 与流水不符"}
        for day, _, first, last in reversed(daily_id_ranges(stored_range))
        if first is not None and ranges.get(day) != (first, last)
    ]
    return problems


def _entry_problems(chain: _Chain, entry) -> list[str]:
    problems = []
    if entry.seq != chain.seq + 1:
        problems.append(f"序号不连续：应为 {chain.seq + 1}，实为 {entry.seq}")
    if entry.id <= chain.id:
        problems.append(f"编号 {entry.id} 不大于上一条的 {chain.id}：流水的先后被改动过")
    if entry.before_quantity != chain.after:
        problems.append(f"期初 {entry.before_quantity} 与上一条结余 {chain.after} 不符")
    delta = 0 if entry.action in TRANSFER_ACTIONS else LEVEL_SIGN[entry.action] * entry.quantity
    if entry.after_quantity != entry.before_quantity + delta:
        problems.append("结余与期初、数量不符")
    if entry.prev_hash != chain.hash:
        problems.append("prev_hash 与上一条的 hash 不符")
    if entry.hash != chain_hash(entry):
        problems.append("hash 与内容不符：该行被改动过")
    return problems
