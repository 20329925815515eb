"""Product use cases: catalogue reads, create with its stock row, edit, soft delete."""
from collections import Counter
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from db import db
from db.reads import PreparedRead
from models import NO_CATEGORY, Product, ProductCount, Stock, StockLevel, shard_of
from models.product import CATEGORY_BY_ID_HINT
from models.shards import SHARDS
from models.stock import is_low_level
from models.types import utcnow
from schemas.product import PRODUCT_SORTS, ProductCreate, ProductOut, ProductQuery, ProductUpdate
from schemas.stock import StockChange
from services import level_counts, product_counts, reservation_service, stock_service, views
from services.event_service import record_event
from services.pagination import contains, ordering, paginate
from services.product_counts import count_live, live_count
from services.transaction import begin_snapshot, run_in_write_transaction
from utils.exceptions import Duplicate, NotFound, PreconditionFailed
from utils.pagination import Page

PRODUCT_FIELDS = ("name", "sku", "barcode", "price", "description", "category")
UNIQUE_CODES = {"sku": "SKU", "barcode": "条码"}  # unique among live products, as labelled in messages
STOCK_SETTINGS = ("min_quantity", "max_quantity", "location")
COPIED_TO_LEVELS = ("name", "sku")  # kept on the product's levels too (models/stock_level.py)
INITIAL_STOCK_REASON = "初始库存"
SORTS = {sort: getattr(Product, sort) for sort in PRODUCT_SORTS}


def _live_products():
    return select(Product).where(Product.deleted_at.is_(None))


_PRODUCT_BY_ID = PreparedRead(views.PRODUCT.where(Product.deleted_at.is_(None), Product.id == bindparam("product_id")))
_ANY_PRODUCT_BY_ID = PreparedRead(views.PRODUCT.add_columns(Product.deleted_at).where(Product.id == bindparam("product_id")))


def list_products(query: ProductQuery) -> Page:
    """One page of live products, filtered and sorted as asked (by number or cursor)."""
    begin_snapshot()
    statement = _live_products()
    if query.q:
        statement = statement.where(
            or_(contains(Product.name, query.q), contains(Product.sku, query.q), contains(Product.description, query.q))
        )
    if query.category:
        statement = statement.where(Product.category == query.category)
    if query.sku:
        statement = statement.where(Product.sku == query.sku)
    if query.barcode:
        statement = statement.where(Product.barcode == query.barcode)
    if query.min_price is not None:
        statement = statement.where(Product.price >= query.min_price)
    if query.max_price is not None:
        statement = statement.where(Product.price <= query.max_price)
    total = None
    if not (query.q or query.sku or query.barcode or query.min_price is not None or query.max_price is not None):
        total = live_count(query.category)
    order = ordering(query.sort, SORTS, key=Product.id)
    if query.category and total is not None and query.sort.removeprefix("-") == "id":  # no other filter
        statement = statement.with_hint(Product, CATEGORY_BY_ID_HINT, dialect_name="mysql")
    return paginate(statement, query, order, views.PRODUCT, total=total)


def get_product(product_id: int) -> SimpleNamespace:
    """A live product as shown (services/views.py), or NotFound: deleted products
    are gone from reads."""
    row = _PRODUCT_BY_ID.first(product_id=product_id)
    if row is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    return views.shaped(row)


def get_product_with_history(product_id: int) -> SimpleNamespace:
    """A product, live or deleted (`deleted_at` set), for pages that show its history:
    a deleted product's ledger is kept, and a movement of it still leads somewhere."""
    row = _ANY_PRODUCT_BY_ID.first(product_id=product_id)
    if row is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    return views.shaped(row)


def find_by_code(code: str) -> int | None:
    """The live product a scanned or typed code names exactly: its barcode, else its SKU."""
    for column in (Product.barcode, Product.sku):
        found = db.session.scalar(select(Product.id).where(column == code, Product.deleted_at.is_(None)))
        if found is not None:
            return found
    return None


def _ensure_codes_free(changes: dict[str, Any], own_id: int | None = None) -> None:
    """409 when another live product has the SKU or barcode being set (deleted ones have
    neither any more)."""
    for field, label in UNIQUE_CODES.items():
        code = changes.get(field)
        if code is None:
            continue
        taken = db.session.scalar(select(Product.id).where(getattr(Product, field) == code))
        if taken is not None and taken != own_id:
            raise Duplicate(f"{label} 已存在", {field: code})


def create_product(data: ProductCreate, actor: str | None = None) -> Product:
    """Create a product with its stock row and its (empty) level in the default
    warehouse; an initial quantity is received there, logged as `in` (by `actor`,
    the API key's name, when there is one)."""

    def work() -> Product:
        _ensure_codes_free(data.model_dump(include=set(UNIQUE_CODES)))
        product = Product(**data.model_dump(include=set(PRODUCT_FIELDS)))
        product.stock = Stock(quantity=0, **data.model_dump(include=set(STOCK_SETTINGS)))
        stock_service.check_thresholds(product.stock)
        db.session.add(product)
        db.session.flush()
        count_live(product.category, shard_of(product.id), +1)
        _announce(product, "product.created")
        # Its level in the default warehouse: a product starts kept in one place.
        stock = stock_service.lock_stock(product.id)
        level = stock_service.lock_level(stock, None)
        if data.initial_quantity:
            initial = StockChange(product_id=product.id, quantity=data.initial_quantity, reason=INITIAL_STOCK_REASON)
            stock_service.record_change(stock, level, "in", initial, actor)
            db.session.refresh(product.stock)  # the count the movement wrote, for the answer
        return product

    return _with_unique_guard(work, data.model_dump(include=set(UNIQUE_CODES)))


def _announce(product: Product, event_type: str) -> None:
    """The product's event, in the transaction that changes it."""
    record_event(event_type, ProductOut.model_validate(product).model_dump(mode="json", by_alias=True),
                 product_id=product.id)


def etag(product: Product | SimpleNamespace) -> str:
    """The product's entity tag: its version, bumped by every change."""
    return f'"{product.version}"'


def update_product(product_id: int, data: ProductUpdate, if_match: frozenset[str] | None = None) -> Product:
    """Change the fields sent; stock settings may change here too, counts never.
    With `if_match`, only while the product is still at one of those ETags."""
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)

    def work() -> Product:
        product = _lock_live_product(product_id, if_match)
        was_low = is_low_level(product.stock.quantity, product.stock.min_quantity)
        _ensure_codes_free(changes, own_id=product.id)
        if "category" in changes and changes["category"] != product.category:
            # Counter rows in one order, so two opposite moves cannot deadlock.
            moves = {product.category or NO_CATEGORY: -1, changes["category"] or NO_CATEGORY: +1}
            for category in sorted(moves):
                count_live(category, shard_of(product.id), moves[category])
        copied = {field: changes[field] for field in COPIED_TO_LEVELS
                  if field in changes and changes[field] != getattr(product, field)}
        if copied:
            db.session.execute(update(StockLevel).where(StockLevel.product_id == product.id).values(**copied))
        for field in PRODUCT_FIELDS:
            if field in changes:
                setattr(product, field, changes[field])
        for field in STOCK_SETTINGS:
            if field in changes:
                setattr(product.stock, field, changes[field])
        stock_service.check_thresholds(product.stock)
        product.updated_at = utcnow()
        db.session.flush()
        _announce(product, "product.updated")
        stock_service.announce_low(SimpleNamespace(
            product_id=product.id, product=product, quantity=product.stock.quantity,
            min_quantity=product.stock.min_quantity, is_low=is_low_level(product.stock.quantity,
                                                                         product.stock.min_quantity)), was_low)
        return product

    return _with_unique_guard(work, changes)


def delete_product(product_id: int, if_match: frozenset[str] | None = None) -> None:
    """Soft delete: the product leaves every read, its SKU and barcode are released for reuse,
    its active reservations are released, its stock row stays frozen at its last count
    and its ledger stays queryable.
    The stock row carries the deletion too, and its reorder threshold is cleared (a
    deleted product is never low on stock), so the stock lists read the stock rows'
    own indexes."""

    def work() -> None:
        product = _lock_live_product(product_id, if_match)
        reservation_service.release_all_held(product_id)
        count_live(product.category, shard_of(product.id), -1)
        record_event("product.deleted", {"id": product.id, "sku": product.sku, "name": product.name},
                     product_id=product.id)
        product.deleted_at = product.stock.deleted_at = utcnow()
        product.sku = product.barcode = None
        product.stock.min_quantity = 0
        gone = level_counts.LevelTally()
        for warehouse_id in db.session.scalars(select(StockLevel.warehouse_id).where(
                StockLevel.product_id == product_id, StockLevel.deleted_at.is_(None))):
            gone.add(product_id, warehouse_id, -1)
        db.session.execute(update(StockLevel).where(StockLevel.product_id == product_id).values(
            deleted_at=product.deleted_at, min_quantity=0))
        gone.write(db.session.connection())

    run_in_write_transaction(work)


def recount() -> tuple[dict[str, int], dict[int, int]]:
    """Rebuild `product_counts` from the live products themselves, `level_counts` from
    the live levels, and the live levels' copies of their product's name and SKU: after
    products or levels were changed in SQL, or made by an instance still on a version
    that did not keep them (a rolling deploy). Run it while no product or level is being
    created, renamed or deleted. Answers the counts per category and per warehouse."""

    def work() -> tuple[dict[str, int], dict[int, int]]:
        category, shard = func.coalesce(Product.category, NO_CATEGORY), Product.id % SHARDS
        shards = db.session.execute(select(category, shard, func.count())
                                    .where(Product.deleted_at.is_(None)).group_by(category, shard)).all()
        db.session.execute(delete(ProductCount))
        counts: Counter[str] = Counter()
        for name, number, live in shards:
            count_live(name, number, live)
            counts[name] += live
        copies = {field: select(getattr(Product, field)).where(Product.id == StockLevel.product_id).scalar_subquery()
                  for field in COPIED_TO_LEVELS}
        db.session.execute(update(StockLevel).where(StockLevel.deleted_at.is_(None)).values(**copies))
        return dict(counts), level_counts.recount()

    return run_in_write_transaction(work)


def list_categories() -> list[dict[str, Any]]:
    """Categories that have live products, with how many each has."""
    return [{"category": category, "product_count": int(count)} for category, count in product_counts.categories()]


def _lock_live_product(product_id: int, if_match: frozenset[str] | None) -> Product:
    """The product locked for a change, after its `If-Match` precondition holds."""
    product = db.session.scalar(_live_products().where(Product.id == product_id).with_for_update())
    if product is None:
        raise NotFound("商品不存在", {"product_id": product_id})
    if if_match is not None and "*" not in if_match and etag(product) not in if_match:
        raise PreconditionFailed(details={"etag": etag(product)})
    return product


def _with_unique_guard(work, changes: dict[str, Any]):
    """Two requests setting one SKU or barcode at once: the unique index decides, answered as 409."""
    try:
        return run_in_write_transaction(work)
    except IntegrityError as exc:
        refused = str(exc.orig).lower()
        for field, label in UNIQUE_CODES.items():
            if changes.get(field) is not None and field in refused:
                raise Duplicate(f"{label} 已存在", {field: changes[field]}) from None
        raise
