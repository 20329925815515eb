"""The busiest products of a time range: the ten that moved the most units (`moved DESC,
product_id`), each with its movements, units in and units out within the range.

Three ways to the same answer, each cheapest somewhere: the stock rows' running totals
when the range holds every movement; a walk down the running totals, when few products
moved more than the tenth best of the range did, all time; and the ledger rows inside
the range summed per product otherwise. The walk weighs itself against the sum once it
has cost half as much, and hands over when going on could cost more.
"""
from bisect import insort

from sqlalchemy import and_, case, func, or_, select

from db import db
from models import TRANSFER_ACTIONS, Product, Stock, StockLog

TOP_PRODUCTS = 10
# Stock rows read per step of the walk: the first step, doubled up to the longest (what
# a walk may read past the product where it stops).
FIRST_STEP, LONGEST_STEP = 64, 1024
# A product walked costs about as much as this many ledger rows summed (measured at
# 100k products and 1M movements: 12-20 µs against 0.6-0.8 µs on MariaDB, ~8 µs against
# ~0.45 µs on SQLite): the walk goes on only while the products it may still have to
# take cost less than the sum.
ROWS_PER_PRODUCT = 20
# The busiest products of all time first: the order of the index `ix_stock_units_moved`.
RUNNING_ORDER = (Stock.units_moved.desc(), Stock.product_id)


def _sum_where(action: str):
    return func.coalesce(func.sum(case((StockLog.action == action, StockLog.quantity), else_=0)), 0)


# A product's figures over its ledger rows (none, through an outer join: all 0).
MOVEMENTS = func.count(StockLog.product_id).label("movements")
TOTAL_IN, TOTAL_OUT = _sum_where("in").label("total_in"), _sum_where("out").label("total_out")
# Units moved in, out or by a count: a transfer moves none in or out of the product's total.
MOVED = func.coalesce(func.sum(case((StockLog.action.in_(TRANSFER_ACTIONS), 0), else_=func.abs(StockLog.quantity))),
                      0).label("moved")
PER_PRODUCT = select(StockLog.product_id, MOVEMENTS, TOTAL_IN, TOTAL_OUT, MOVED).group_by(StockLog.product_id)


def of_all_time(bounded: bool) -> list[dict]:
    """The busiest products of all time, from their stock rows' running totals (indexed).
    A deleted product is named by the SKU of its last movement; within bounds, however
    wide, by the greatest SKU its movements had, as for any range."""
    if bounded:
        sku_then = select(func.max(StockLog.sku)).where(StockLog.product_id == Stock.product_id).scalar_subquery()
    else:
        sku_then = (select(StockLog.sku).where(StockLog.product_id == Stock.product_id)
                    .order_by(StockLog.seq.desc()).limit(1).scalar_subquery())
    rows = db.session.execute(
        select(Stock.product_id, Product.name, func.coalesce(Product.sku, sku_then), Stock.movements,
               Stock.total_in, Stock.total_out, Stock.units_moved)
        .join(Product, Product.id == Stock.product_id)
        # Every movement moves a unit at least: units_moved > 0 is a range of the index.
        .where(Stock.units_moved > 0, Stock.movements > 0)
        .order_by(*RUNNING_ORDER)
        .limit(TOP_PRODUCTS)
    )
    return [_entry(*row) for row in rows]


def of_range(inside: list, rows: int) -> list[dict]:
    """The busiest products among the `rows` ledger rows matching `inside` (a time range
    that does not hold the whole ledger)."""
    busiest = walked(inside, rows)
    return summed_inside(inside) if busiest is None else busiest


def summed_inside(inside: list) -> list[dict]:
    """The busiest products among the ledger rows matching `inside`, ranked by units moved
    alone off an index that holds what is added up (~0.7 µs a row), then the ten summed
    in full."""
    ranked = db.session.execute(
        select(StockLog.product_id, MOVED).where(*inside).group_by(StockLog.product_id)
        .order_by(MOVED.desc(), StockLog.product_id).limit(TOP_PRODUCTS)).all()
    return _figured([product_id for product_id, _ in ranked], inside)


def walked(inside: list, rows: int | None = None) -> list[dict] | None:
    """The busiest products among the ledger rows matching `inside` (a time range), by
    walking products in the order of their running units moved, a bound on what each
    moved in the range, until the tenth best found outranks the next bound: no product
    further down can enter the ten. None when the products still to walk would cost more
    than summing `rows` rows (None: walk to the end). Weighed once, when the walk has
    cost half the sum or reached its longest step: not sooner, as the all-time leaders
    walked first may have moved little in the range (they moved much long ago), and the
    tenth best among them would say little."""
    best: list[tuple] = []  # (-moved, product_id), best first
    weighed, walked_so_far = rows is None, 0
    for keys, moved in _steps(inside):
        walked_so_far += len(keys)
        for product_id, bound in keys:
            if len(best) == TOP_PRODUCTS and best[-1] < (-bound, product_id):
                return _figured([product_id for _, product_id in best], inside)
            if product_id in moved:  # never listed without a movement in the range
                insort(best, (-moved[product_id], product_id))
                del best[TOP_PRODUCTS:]
        if not weighed and (len(keys) == LONGEST_STEP or walked_so_far * ROWS_PER_PRODUCT * 2 >= rows):
            weighed = True
            # Short of ten, any product that moved may still enter.
            if not _walk_pays(-best[-1][0] if len(best) == TOP_PRODUCTS else 1, rows):
                return None
    return _figured([product_id for _, product_id in best], inside)


def _walk_pays(tenth: int, rows: int) -> bool:
    """Whether the products whose running units moved reach `tenth` (those the walk may
    still have to take) cost less than summing `rows` ledger rows: true when the product
    that many places down the running totals' index falls short of it."""
    placed = db.session.scalar(select(Stock.units_moved).order_by(*RUNNING_ORDER).offset(rows // ROWS_PER_PRODUCT).limit(1))
    return placed is None or placed < tenth


def _steps(inside: list):
    """Products in the order of their running units moved, a step at a time: each step's
    (product_id, units moved all time), and the units moved in the range by those of them
    with rows in it, summed off the `(product_id, created_at, action, quantity)` index: a
    seek per product and its few rows inside."""
    last, step = None, FIRST_STEP
    while True:
        walk = select(Stock.product_id, Stock.units_moved).order_by(*RUNNING_ORDER).limit(step)
        if last is not None:
            walk = walk.where(or_(Stock.units_moved < last.units_moved,
                                  and_(Stock.units_moved == last.units_moved, Stock.product_id > last.product_id)))
        keys = db.session.execute(walk).all()
        if not keys:
            return
        yield keys, dict(db.session.execute(
            select(StockLog.product_id, MOVED)
            .where(StockLog.product_id.in_([key.product_id for key in keys]), *inside)
            .group_by(StockLog.product_id)).all())
        if len(keys) < step:
            return
        last, step = keys[-1], min(2 * step, LONGEST_STEP)


def _figured(busiest: list[int], inside: list) -> list[dict]:
    """The products `busiest` (best first) with their figures among the ledger rows
    matching `inside`, each with its name and SKU (a deleted product's: the greatest its
    rows inside had)."""
    if not busiest:
        return []
    figures = {product_id: figures for product_id, *figures in db.session.execute(
        PER_PRODUCT.where(StockLog.product_id.in_(busiest), *inside))}
    sku_then = select(func.max(StockLog.sku)).where(StockLog.product_id == Product.id, *inside).scalar_subquery()
    names = {product_id: (name, sku) for product_id, name, sku in db.session.execute(
        select(Product.id, Product.name, func.coalesce(Product.sku, sku_then)).where(Product.id.in_(busiest)))}
    return [_entry(product_id, *names[product_id], *figures[product_id]) for product_id in busiest]


def _entry(product_id, name, sku, movements, total_in, total_out, units) -> dict:
    return {"product_id": product_id, "name": name, "sku": sku, "movements": int(movements),
            "total_in": int(total_in), "total_out": int(total_out), "units_moved": int(units)}
