"""What `python -m bench` measures: each row's requests, its load and its goal, and the
ranges its random numbers, sorts and times are drawn from, asked of the seeded service."""
import time
from typing import NamedTuple
from urllib.parse import quote

import requests

from bench import wrk

HOT_PRODUCTS = 200
BATCH_SIZE = 20
CATEGORY = "食品"  # one of the seed's categories, an eighth of its products
PRODUCT_SORTS = ("id", "name", "price", "sku", "created_at", "updated_at")
STOCK_SORTS = ("product_id", "name", "sku", "quantity", "min_quantity", "updated_at")
LUA_CATEGORY = quote(CATEGORY).replace("%", "%%")  # in a path that Lua's string.format fills in
DEFAULT_WAREHOUSE_ID = 1  # in a fresh database
HISTORY_DAYS = 91  # the seed spreads its movements over the 90 days before it ran


class Scenario(NamedTuple):
    name: str
    path: str | None  # filled in by the kind's script: %d a random number, %s a sort or an instant
    kind: str  # the script (SCRIPTS, else random GETs) and the ranges it draws from
    connections: int
    goal: tuple[str, float] | None


# Any other kind: random GETs of its path.
SCRIPTS = {
    "write": wrk.ADD_AND_REDUCE, "floor-write": wrk.ADD_AND_REDUCE, "batch": wrk.BATCH, "walk": wrk.WALK,
    "product-pages": wrk.SORTED_PAGES, "category-pages": wrk.SORTED_PAGES, "stock-pages": wrk.SORTED_PAGES,
    "low-pages": wrk.SORTED_PAGES, "warehouse-pages": wrk.SORTED_PAGES, "product-walk": wrk.SORTED_WALK,
    "ranges": wrk.RANGES, "product-ranges": wrk.RANGES,
}
CEILING = Scenario("ceiling: bare Flask", "/ping?n=%d", "ceiling", 16, None)
# Each throughput goal's floor, by the goal's kind: measured in the same rounds.
FLOORS = {
    "catalogue": Scenario("floor: one-row read", "/floor/stock/%d", "floor-read", 16, None),
    "write": Scenario("floor: smallest durable write", "/floor/stock", "floor-write", 16, None),
}
BARE_KINDS = {"ceiling", "floor-read", "floor-write"}  # served by bench/bare_app.py
# Latency goals are measured below saturation (4 connections; 2 for statistics): at 16
# a closed-loop load generator keeps every worker busy and p99 becomes the length of
# the queue. Every list row draws a sort in either direction and a page anywhere in
# the list, so the middle pages, the slowest to number, are as likely as the first.
SCENARIOS = [
    Scenario("product read", "/api/products/%d", "catalogue", 16, ("ratio", 0.7)),
    Scenario("stock read", "/api/stock/product/%d", "catalogue", 16, ("ratio", 0.7)),
    Scenario("stock add/reduce", "/api/stock", "write", 16, ("ratio", 0.5)),
    Scenario("product list, any sort, any page", "/api/products/?sort=%s&page=%d", "product-pages", 4, ("p99", 50)),
    Scenario("products of a category, any sort, any page", f"/api/products/?category={LUA_CATEGORY}&sort=%s&page=%d",
             "category-pages", 4, ("p99", 50)),
    # Each wrk thread one connection, so that every walk follows its own cursor.
    Scenario("product list, walked by cursor in any sort", "/api/products/?sort=%s", "product-walk", 4, ("p99", 50)),
    Scenario("stock list, any sort, any page", "/api/stock/?sort=%s&page=%d", "stock-pages", 4, ("p99", 50)),
    Scenario("low stock only, any sort, any page", "/api/stock/?low_only=true&sort=%s&page=%d", "low-pages", 4,
             ("p99", 50)),
    # The default warehouse (made first: id 1) holds a level of every product.
    Scenario("one warehouse's stock, any sort, any page", f"/api/warehouses/{DEFAULT_WAREHOUSE_ID}/stock?sort=%s&page=%d",
             "warehouse-pages", 4, ("p99", 50)),
    Scenario("low-stock list, any page", "/api/stock/low-stock?page=%d", "low-stock-pages", 4, ("p99", 50)),
    Scenario("movement log, any page", "/api/logs/?page=%d", "log-pages", 4, ("p99", 50)),
    Scenario("movement log, walked by cursor", "/api/logs/?before_id=%d", "walk", 4, ("p99", 50)),
    Scenario("a product's movement history", "/api/logs/product/%d", "catalogue", 4, ("p99", 20)),
    Scenario("statistics, whole range", "/api/logs/statistics?n=%d", "any", 2, ("p99", 300)),
    Scenario("statistics, any range with partial days", "/api/logs/statistics?start_date=%s&end_date=%s", "ranges", 2,
             ("p99", 300)),
    Scenario("statistics of a product, any range", "/api/logs/statistics?start_date=%s&end_date=%s", "product-ranges", 2,
             ("p99", 300)),
    # Not a goal: what a client gains by sending movements in batches (BATCH_SIZE each).
    # Last, so that the database's work after these writes falls on no measured goal.
    Scenario(f"stock batch, {BATCH_SIZE} movements each", None, "batch", 16, None),
]


def _both_directions(sorts: tuple[str, ...]) -> str:
    """A Lua list of every sort, ascending and descending."""
    return ", ".join(f'"{sort}", "-{sort}"' for sort in sorts)


def _pages(base_url: str, path: str) -> int:
    """How many pages of 20 a list has now (at least 1)."""
    answer = requests.get(f"{base_url}{path}", params={"per_page": 20}, timeout=60).json()
    return max(1, answer["data"]["pagination"]["pages"])


def workloads(base_url: str, products: int, movements: int, seeded_at: float) -> dict[str, dict]:
    """For each kind, what its script draws from: `first`..`last`, and `sorts`."""
    hot = {"first": products + 1, "last": products + HOT_PRODUCTS}
    product_sorts, stock_sorts = _both_directions(PRODUCT_SORTS), _both_directions(STOCK_SORTS)
    history = {"first": int(seeded_at - HISTORY_DAYS * 86400), "last": int(time.time())}
    return {
        "ceiling": {"first": 1, "last": 1_000_000}, "any": {"first": 1, "last": 1_000_000},
        "catalogue": {"first": 1, "last": products}, "floor-read": {"first": 1, "last": products},
        "write": hot, "batch": hot, "floor-write": hot, "walk": {"first": 1, "last": movements},
        "product-pages": {"first": 1, "last": _pages(base_url, "/api/products/"), "sorts": product_sorts},
        "category-pages": {"first": 1, "last": _pages(base_url, f"/api/products/?category={quote(CATEGORY)}"),
                           "sorts": product_sorts},
        "product-walk": {"first": 1, "last": _pages(base_url, "/api/products/"), "sorts": product_sorts},
        "stock-pages": {"first": 1, "last": _pages(base_url, "/api/stock/"), "sorts": stock_sorts},
        "low-pages": {"first": 1, "last": _pages(base_url, "/api/stock/?low_only=true"), "sorts": stock_sorts},
        "warehouse-pages": {"first": 1, "last": _pages(base_url, f"/api/warehouses/{DEFAULT_WAREHOUSE_ID}/stock"),
                            "sorts": stock_sorts},
        "low-stock-pages": {"first": 1, "last": _pages(base_url, "/api/stock/low-stock")},
        "log-pages": {"first": 1, "last": _pages(base_url, "/api/logs/")},
        "ranges": {**history, "products": 0},
        "product-ranges": {**history, "products": products + HOT_PRODUCTS},
    }
