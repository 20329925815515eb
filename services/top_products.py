"""The busiest products of a time range: the ten that moved the most units (`moved DESC,
product_id`), each with its movements, units in and units out within the range.

Three ways to the same answer, each cheapest somewhere: the stock rows' running totals
when the range holds every movement; the ledger rows inside the range summed per
product when it holds few; and when it holds much of the ledger, the running totals
less each product's rows outside the range, products taken in the order of their
running totals until none further down could still enter the ten.
"""
from bisect import insort

from sqlalchemy import and_, case, func, select

from db import db
from models import TRANSFER_ACTIONS, Product, Stock, StockLog

TOP_PRODUCTS = 10
# Stock rows read per step of the walk: the first step, doubled up to the longest (what
# a walk may read past the product where it stops).
FIRST_STEP, LONGEST_STEP = 64, 1024
# A product walked costs about as much as this many ledger rows summed (~20 µs against
# 0.6-0.7 µs on SQLite and MariaDB): the walk gives up when it would cost more than the sum.
ROWS_PER_PRODUCT = 30
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


def summed_inside(inside: list) -> list[dict]:
    """The busiest products among the ledger rows matching `inside`, summed per product
    off an index that holds what is added up (~1 µs a row)."""
    busiest = db.session.execute(
        PER_PRODUCT.where(*inside).order_by(MOVED.desc(), StockLog.product_id).limit(TOP_PRODUCTS)).all()
    return _named(busiest, inside)


def totals_less_outside(outside, inside: list, most: int) -> list[dict] | None:
    """The busiest products of a range, `outside` matching the ledger rows beyond it and
    `inside` those within; None when that needs more than `most` products. Products come
    in the order of their running units moved, a bound on what each moved in the range,
    until the tenth best found outranks the next bound: no product further down can
    enter the ten."""
    best: list[tuple] = []  # (-moved, product_id, movements, total_in, total_out), best first
    for walked, (product_id, bound, movements, total_in, total_out, moved) in enumerate(_in_range_figures(outside)):
        if len(best) == TOP_PRODUCTS and best[-1][:2] < (-bound, product_id):
            break
        if walked == most:
            return None
        if movements > 0:  # never listed without a movement in the range
            insort(best, (-moved, product_id, movements, total_in, total_out))
            del best[TOP_PRODUCTS:]
    return _named([(product_id, *figures, -negated) for negated, product_id, *figures in best], inside)


def _in_range_figures(outside):
    """(product_id, running units moved, and movements, units in, out and moved within the
    range) of every product, in the order of its running units moved, a step of stock
    rows at a time: the running totals less the product's ledger rows matching `outside`,
    read off its `(product_id, created_at, action, quantity)` index."""
    walked, step = 0, FIRST_STEP
    while True:
        # The step's keys off the index alone, then their rows: MariaDB otherwise sorts the
        # table. Keys LEFT JOIN rows (each key has its row), as SQLite would otherwise walk
        # every stock row in the index's order and look each up among the keys.
        keys = select(Stock.product_id).order_by(*RUNNING_ORDER).offset(walked).limit(step).subquery()
        rows = db.session.execute(
            select(Stock.product_id, Stock.units_moved, Stock.movements - MOVEMENTS, Stock.total_in - TOTAL_IN,
                   Stock.total_out - TOTAL_OUT, Stock.units_moved - MOVED)
            .select_from(keys).outerjoin(Stock, Stock.product_id == keys.c.product_id)
            .outerjoin(StockLog, and_(StockLog.product_id == Stock.product_id, outside))
            .group_by(Stock.product_id, Stock.units_moved, Stock.movements, Stock.total_in, Stock.total_out)
            .order_by(*RUNNING_ORDER)).all()
        yield from rows
        if len(rows) < step:
            return
        walked, step = walked + step, min(2 * step, LONGEST_STEP)


def _named(busiest: list, inside: list) -> list[dict]:
    """Rows of (product_id, movements, total_in, total_out, moved), best first, with each
    product's name and SKU (a deleted product's: the greatest its rows inside had)."""
    if not busiest:
        return []
    sku_then = select(func.max(StockLog.sku)).where(StockLog.product_id == Product.id, *inside).scalar_subquery()
    names = {product_id: (name, sku) for product_id, name, sku in db.session.execute(
        select(Product.id, Product.name, func.coalesce(Product.sku, sku_then))
        .where(Product.id.in_([row[0] for row in busiest])))}
    return [_entry(product_id, *names[product_id], *figures) for product_id, *figures in busiest]


def _entry(product_id, name, sku, movements, total_in, total_out, units) -> dict:
    return {"product_id": product_id, "name": name, "sku": sku, "movements": int(movements),
            "total_in": int(total_in), "total_out": int(total_out), "units_moved": int(units)}
