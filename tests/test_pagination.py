"""Pages by number and by cursor (`after`/`before` and `pagination.next_after`/`prev_before`)
on every list: a cursor walk visits every row once in every sort, ties and changes
between pages included, and agrees with the numbered pages."""
import base64
import json

import pytest

from tests.helpers import assert_error, ok

PER_PAGE = 7
PRODUCT_SORTS = ["id", "name", "price", "sku", "created_at", "updated_at"]
STOCK_SORTS = ["product_id", "name", "sku", "quantity", "min_quantity", "updated_at"]
LISTS = (
    [f"/api/products/?sort={sign}{sort}" for sort in PRODUCT_SORTS for sign in ("", "-")]
    + [f"/api/products/?category=%E9%A3%9F%E5%93%81&sort={sign}{sort}" for sort in PRODUCT_SORTS for sign in ("", "-")]
    + [f"/api/stock/?sort={sign}{sort}" for sort in STOCK_SORTS for sign in ("", "-")]
    + [f"/api/stock/?low_only=true&sort={sign}{sort}" for sort in STOCK_SORTS for sign in ("", "-")]
    + ["/api/stock/low-stock?x=1", "/api/logs/?x=1", "/api/logs/?action=out", "/api/logs/product/{busiest}?x=1"]
    # A warehouse holding some products only (by name or SKU its list passes over the
    # rest), and the default one, holding every product (its list is the products' own)
    + [f"/api/warehouses/{{other}}/stock?sort={sign}{sort}" for sort in STOCK_SORTS for sign in ("", "-")]
    + [f"/api/warehouses/{{other}}/stock?low_only=true&sort={sign}{sort}" for sort in STOCK_SORTS for sign in ("", "-")]
    + [f"/api/warehouses/{{other}}/stock?category=%E9%A3%9F%E5%93%81&sort={sign}{sort}" for sort in ("name", "sku")
       for sign in ("", "-")]
    + [f"/api/warehouses/{{default}}/stock?{category}sort={sign}{sort}" for category in ("", "category=%E9%A3%9F%E5%93%81&")
       for sort in ("name", "sku") for sign in ("", "-")]
)


@pytest.fixture
def catalogue(client, runner, create_product):
    """Seeded products in two warehouses (created and updated at one instant, stock rows
    likewise), plus products that tie on name and price, half of them in the other
    warehouse too, and a deleted one; twelve levels of the other warehouse are low."""
    result = runner.invoke(args=["seed", "--products", "40", "--movements", "400", "--random-seed", "5",
                                 "--warehouses", "2"])
    assert result.exit_code == 0, result.output
    default, other = sorted(ok(client.get("/api/warehouses/"))["items"], key=lambda w: not w["is_default"])
    for i in range(6):
        tie = create_product(name="同名商品", price=12.5, category="食品", min_quantity=5, initial_quantity=i % 2)
        if i % 2:
            ok(client.post("/api/stock/add", json={"product_id": tie["id"], "quantity": 1, "warehouse_id": other["id"]}))
    gone = create_product(name="已删除", price=12.5, category="食品")
    ok(client.delete(f"/api/products/{gone['id']}"))
    for level in ok(client.get(f"/api/warehouses/{other['id']}/stock", query_string={"per_page": 12}))["items"]:
        ok(client.post("/api/stock/adjust", json={"product_id": level["product_id"], "warehouse_id": other["id"],
                                                  "quantity": level["quantity"], "min_quantity": level["quantity"] + 1}))
    return {"busiest": ok(client.get("/api/logs/statistics"))["top_products"][0]["product_id"],
            "default": default["id"], "other": other["id"]}


def _items(page: dict) -> list:
    return [item.get("id", item.get("product_id")) for item in page["items"]]


def _numbered(client, path: str) -> list[list]:
    pages, number = [], 1
    while True:
        page = ok(client.get(f"{path}&per_page={PER_PAGE}&page={number}"))
        if not page["items"]:
            return pages
        pages.append(_items(page))
        number += 1


def _walk(client, path: str, start: dict, forward: bool = True) -> list[list]:
    """Follow `next_after` (or `prev_before`) from `start` to the end of the list."""
    pages, cursor = [], start["pagination"]["next_after" if forward else "prev_before"]
    while cursor is not None:
        page = ok(client.get(f"{path}&per_page={PER_PAGE}&{'after' if forward else 'before'}={cursor}"))
        pages.append(_items(page))
        cursor = page["pagination"]["next_after" if forward else "prev_before"]
    return pages if forward else pages[::-1]


@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_walk_visits_every_row_once_in_the_order_of_the_numbered_pages(client, catalogue, path):
    path = path.format(**catalogue)
    numbered = _numbered(client, path)
    assert len(numbered) > 1, "the list must span pages"
    first = ok(client.get(f"{path}&per_page={PER_PAGE}"))
    forward = [_items(first), *_walk(client, path, first)]
    assert forward == numbered
    last = ok(client.get(f"{path}&per_page={PER_PAGE}&page={len(numbered)}"))
    assert [*_walk(client, path, last, forward=False), _items(last)] == numbered
    walked = [row for page in forward for row in page]
    assert len(walked) == len(set(walked)) == ok(client.get(path))["pagination"]["total"]


@pytest.mark.parametrize("path", ["/api/products/?sort=-price", "/api/stock/?sort=min_quantity", "/api/logs/?x=1"])
def test_a_numbered_pages_cursors_lead_to_its_neighbours(client, catalogue, path):
    middle = ok(client.get(f"{path}&per_page={PER_PAGE}&page=3"))
    before = ok(client.get(f"{path}&per_page={PER_PAGE}&page=2"))
    after = ok(client.get(f"{path}&per_page={PER_PAGE}&page=4"))
    cursors = middle["pagination"]
    assert _items(ok(client.get(f"{path}&per_page={PER_PAGE}&after={cursors['next_after']}"))) == _items(after)
    assert _items(ok(client.get(f"{path}&per_page={PER_PAGE}&before={cursors['prev_before']}"))) == _items(before)


def test_the_first_and_last_pages_have_no_cursor_beyond_them(client, catalogue):
    first = ok(client.get(f"/api/products/?per_page={PER_PAGE}"))["pagination"]
    assert first["prev_before"] is None and first["next_after"] is not None
    last = ok(client.get(f"/api/products/?per_page={PER_PAGE}&page={first['pages']}"))["pagination"]
    assert last["next_after"] is None and last["prev_before"] is not None
    beyond = ok(client.get("/api/products/?page=99"))
    assert beyond["items"] == []
    assert (beyond["pagination"]["next_after"], beyond["pagination"]["prev_before"]) == (None, None)


def test_a_walk_goes_on_past_rows_that_change_between_its_pages(client, catalogue, create_product):
    """The cursor holds the sort values of its row, not its position: deleting or
    repricing that row, or rows anywhere else, never makes the walk skip or repeat a
    row that stayed as it was; rows moved ahead of the walk are met once more."""
    path = "/api/products/?sort=price"
    before = [row for page in _numbered(client, path) for row in page]
    first = ok(client.get(f"{path}&per_page={PER_PAGE}"))
    seen, cursor_row = _items(first), first["items"][-1]
    ok(client.delete(f"/api/products/{cursor_row['id']}"))
    ok(client.put(f"/api/products/{first['items'][0]['id']}", json={"price": 0}))  # stays behind the walk
    moved_ahead = first["items"][1]["id"]
    ok(client.put(f"/api/products/{moved_ahead}", json={"price": 999999}))
    new_ahead = create_product(price=99999)["id"]
    create_product(price=0)  # behind the walk: not met
    for page in _walk(client, path, first):
        seen += page
    unchanged = [row for row in before if row not in {cursor_row["id"], first["items"][0]["id"], moved_ahead}]
    assert all(seen.count(row) == 1 for row in unchanged)
    assert seen.count(moved_ahead) == 2 and seen.count(new_ahead) == 1
    assert len(seen) == len(before) + 2


def test_before_id_is_the_ledgers_cursor_after_by_another_name(client, catalogue):
    first = ok(client.get(f"/api/logs/?per_page={PER_PAGE}"))["pagination"]
    by_id = ok(client.get(f"/api/logs/?per_page={PER_PAGE}&before_id={first['next_before_id']}"))
    by_cursor = ok(client.get(f"/api/logs/?per_page={PER_PAGE}&after={first['next_after']}"))
    assert by_id == by_cursor


def _cursor(document) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("path", "query", "field"), [
    ("/api/products/?sort=price", "after=not-a-cursor!", "after"),
    ("/api/products/?sort=price", f"after={_cursor('price')}", "after"),
    ("/api/products/?sort=price", f"after={_cursor({'price': 1})}", "after"),
    ("/api/products/?sort=price", f"after={_cursor([])}", "after"),
    ("/api/products/?sort=price", f"after={_cursor(['name', 'a', 1])}", "after"),  # another sort's cursor
    ("/api/products/?sort=price", f"after={_cursor(['price', '1.5'])}", "after"),  # a value short
    ("/api/products/?sort=price", f"after={_cursor(['price', 'abc', 1])}", "after"),
    ("/api/products/?sort=price", f"after={_cursor(['price', 'NaN', 1])}", "after"),
    ("/api/products/?sort=price", f"after={_cursor(['price', '1e999999', 1])}", "after"),
    ("/api/products/?sort=price", f"before={_cursor(['price', '1.5', '1'])}", "before"),
    ("/api/products/?sort=price", f"before={_cursor(['price', '1.5', True])}", "before"),
    ("/api/products/?sort=price", f"before={_cursor(['price', '1.5', 2**63])}", "before"),
    ("/api/products/?sort=created_at", f"after={_cursor(['created_at', '2026-01-01T00:00:00', 1])}", "after"),
    ("/api/products/?sort=created_at", f"after={_cursor(['created_at', 'yesterday', 1])}", "after"),
    ("/api/products/?sort=name", f"after={_cursor(['name', 5, 1])}", "after"),
    ("/api/products/?sort=name", "after=" + "A" * 2049, "after"),
    ("/api/products/?sort=name", "after=", "after"),
    ("/api/products/?sort=name", f"page=2&after={_cursor(['name', 'a', 1])}", "after"),
    ("/api/products/?sort=name", f"after={_cursor(['name', 'a', 1])}&before={_cursor(['name', 'a', 1])}", "before"),
    ("/api/stock/?sort=-quantity", f"after={_cursor(['quantity', 1, 1])}", "after"),
    ("/api/stock/low-stock?x=1", f"after={_cursor(['shortage', 1])}", "after"),
    ("/api/logs/?x=1", f"before={_cursor(['-id', 'x'])}", "before"),
    ("/api/logs/?x=1", f"before_id=5&after={_cursor(['-id', 9])}", "before_id"),
    ("/api/logs/product/{busiest}?x=1", f"after={_cursor(['-id', -2**64])}", "after"),
])
def test_a_bad_cursor_is_refused_naming_its_parameter(client, catalogue, path, query, field):
    details = assert_error(client.get(f"{path.format(**catalogue)}&{query}"), 400, "VALIDATION_ERROR")
    assert field in details
