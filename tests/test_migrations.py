"""`flask db upgrade` on an empty database gives exactly the models' schema."""
from datetime import datetime, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from db import db
from main import create_app

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_upgrade_on_an_empty_database_matches_the_models(empty_database_url):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), db.metadata)
        db.engine.dispose()
    assert differences == []


def test_start_up_migrates_a_fresh_database_and_serves(empty_database_url):
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "SCHEMA_SETUP": "migrate"})
    client = app.test_client()
    created = client.post("/api/products/", json={"name": "迁移测试", "sku": "MIG-1", "price": 1, "initial_quantity": 2})
    assert created.status_code == 201
    with app.app_context():
        db.engine.dispose()


def test_running_totals_migration_backfills_existing_ledgers(empty_database_url):
    """A database with history from before the running totals gets them computed."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "f22d63e8427f"]).exit_code == 0
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO products (id, name, price, sku, created_at, updated_at, version)"
            " VALUES (1, '旧商品', 1, 'OLD-1', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"))
        db.session.execute(text(
            "INSERT INTO stock (product_id, quantity, min_quantity, updated_at) VALUES (1, 7, 0, '2026-01-02 00:00:00')"))
        for seq, action, quantity, before, after, day in ((1, "in", 10, 0, 10, "2026-01-01"), (2, "out", 3, 10, 7, "2026-01-02")):
            db.session.execute(text(
                "INSERT INTO stock_logs (product_id, seq, action, quantity, before_quantity, after_quantity, sku,"
                " product_name, created_at, prev_hash, hash) VALUES (1, :seq, :action, :quantity, :before, :after,"
                " 'OLD-1', '旧商品', :day, '', '')"),
                {"seq": seq, "action": action, "quantity": quantity, "before": before, "after": after, "day": f"{day} 08:00:00"})
        db.session.commit()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        totals = db.session.execute(text(
            "SELECT movements, total_in, total_out, adjust_net, units_moved FROM stock WHERE product_id = 1")).one()
        days = db.session.execute(text(
            "SELECT day, in_quantity, out_quantity FROM movement_daily ORDER BY day")).all()
        db.engine.dispose()
    assert tuple(totals) == (2, 10, 3, 0, 13)
    assert [(str(day), i, o) for day, i, o in days] == [("2026-01-01", 10, 0), ("2026-01-02", 0, 3)]


def test_product_counts_migration_counts_the_live_products(empty_database_url):
    """Counts per category start from the products already there; deleted ones are not counted."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "5e438f547943"]).exit_code == 0
    with app.app_context():
        for pid, category, deleted in ((1, "食品", None), (2, "食品", None), (3, "食品", "2026-01-03 00:00:00"),
                                       (4, None, None), (5, "饮料", None)):
            db.session.execute(text(
                "INSERT INTO products (id, name, price, category, sku, created_at, updated_at, deleted_at, version)"
                " VALUES (:id, '旧商品', 1, :category, :sku, '2026-01-01 00:00:00', '2026-01-01 00:00:00', :deleted, 1)"),
                {"id": pid, "category": category, "sku": f"OLD-{pid}", "deleted": deleted})
        db.session.commit()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        counts = dict(db.session.execute(text("SELECT category, live FROM product_counts")).all())
        db.engine.dispose()
    assert counts == {"食品": 2, "": 1, "饮料": 1}


def test_categories_counted_together_by_a_case_blind_collation_are_counted_apart(empty_database_url):
    """On MySQL the columns were case- and width-insensitive: one count for "Food" and
    "food". After the upgrade each spelling is its own category (SQLite's were already)."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "dd98d27733ea"]).exit_code == 0
    spellings = ("Food", "food", "ＦＯＯＤ")
    with app.app_context():
        for pid, category in enumerate(spellings, start=1):
            db.session.execute(text(
                "INSERT INTO products (id, name, price, category, sku, created_at, updated_at, version)"
                " VALUES (:id, '旧商品', 1, :category, :sku, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"),
                {"id": pid, "category": category, "sku": f"OLD-{pid}"})
            db.session.execute(text("INSERT INTO stock (product_id, quantity, min_quantity, updated_at)"
                                    " VALUES (:id, 0, 0, '2026-01-01 00:00:00')"), {"id": pid})
        db.session.execute(text(  # as the service counted them before the upgrade
            "INSERT INTO product_counts (category, live) SELECT category, COUNT(*) FROM products GROUP BY category"))
        db.session.commit()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    client = app.test_client()
    categories = client.get("/api/products/categories").get_json()["data"]
    assert {row["category"]: row["product_count"] for row in categories} == dict.fromkeys(spellings, 1)
    for spelling in spellings:
        assert client.get("/api/products/", query_string={"category": spelling}).get_json()["data"]["pagination"]["total"] == 1
    with app.app_context():
        db.engine.dispose()


def test_barcodes_are_added_to_products_that_have_stock_and_history(empty_database_url):
    """The barcode migration adds a column and a unique index in place (SQLite rebuilding
    `products` would trip the foreign keys of its stock and ledger rows), and downgrades."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "181c2dad228a"]).exit_code == 0
    client = app.test_client()
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO products (id, name, price, sku, created_at, updated_at, version)"
            " VALUES (1, '旧商品', 1, 'OLD-1', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"))
        db.session.execute(text("INSERT INTO stock (product_id, quantity, min_quantity, updated_at)"
                                " VALUES (1, 0, 0, '2026-01-01 00:00:00')"))
        db.session.execute(text("INSERT INTO product_counts (category, live) VALUES ('', 1)"))
        db.session.commit()
    for step in ("upgrade", "downgrade", "upgrade"):
        result = runner.invoke(args=["db", step])
        assert result.exit_code == 0, result.output
    assert client.get("/api/products/1").get_json()["data"]["barcode"] is None
    assert client.patch("/api/products/1", json={"barcode": "96385074"}).status_code == 200
    second = client.post("/api/products/", json={"name": "新商品", "sku": "NEW-1", "price": 1, "barcode": "96385074"})
    assert second.status_code == 409
    with app.app_context():
        db.engine.dispose()


def test_sharding_the_running_totals_keeps_every_sum_and_downgrades(empty_database_url):
    """Rows from before become shard 0; new changes add to their products' shards; a
    downgrade merges the shards back into one row per day and category."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "f71b2435c6bd"]).exit_code == 0
    with app.app_context():  # product 1, with 4 received, as the service kept it before
        db.session.execute(text(
            "INSERT INTO products (id, name, price, category, sku, created_at, updated_at, version)"
            " VALUES (1, '旧商品', 1, '食品', 'OLD-1', :now, :now, 1)"), {"now": datetime.now(timezone.utc)})
        db.session.execute(text("INSERT INTO stock (product_id, quantity, min_quantity, updated_at, movements,"
                                " total_in, units_moved) VALUES (1, 0, 0, :now, 0, 0, 0)"),
                           {"now": datetime.now(timezone.utc)})
        db.session.execute(text("INSERT INTO product_counts (category, live) VALUES ('食品', 1)"))
        db.session.execute(text("INSERT INTO movement_daily (day, in_movements, in_quantity, out_movements,"
                                " out_quantity, adjust_movements, adjust_quantity) VALUES ('2026-01-01', 1, 5, 0, 0, 0, 0)"))
        db.session.commit()
        db.engine.dispose()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    client = app.test_client()
    assert client.post("/api/stock/add", json={"product_id": 1, "quantity": 4}).status_code == 200
    for sku in ("NEW-1", "NEW-2"):
        created = client.post("/api/products/", json={"name": "新商品", "sku": sku, "price": 1, "category": "食品",
                                                      "initial_quantity": 3})
        assert created.status_code == 201, created.get_json()

    def totals():
        with app.app_context():
            rows = db.session.execute(text("SELECT in_movements, in_quantity FROM movement_daily")).all()
            counts = db.session.execute(text("SELECT live FROM product_counts WHERE category = '食品'")).all()
            db.engine.dispose()
        return len(rows), [sum(column) for column in zip(*rows)], len(counts), sum(live for live, in counts)

    # The old rows in shard 0; today's movements in shards 1, 2 and 3; products 2 and 3 in theirs.
    assert totals() == (4, [4, 15], 3, 3)
    statistics = client.get("/api/logs/statistics").get_json()["data"]
    assert (statistics["total_logs"], statistics["total_in"]) == (4, 15)
    assert client.get("/api/products/categories").get_json()["data"] == [{"category": "食品", "product_count": 3}]
    result = runner.invoke(args=["db", "downgrade", "f71b2435c6bd"])
    assert result.exit_code == 0, result.output
    assert totals() == (2, [4, 15], 1, 3)
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert totals() == (2, [4, 15], 1, 3)


def test_daily_ranges_migration_gives_each_day_the_range_of_its_ledger_ids(empty_database_url):
    """Every totals row of a day gets the day's least and greatest id, shard 0's rows from
    before sharding (which count every product's movements) included."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "9c3e5b7a1d42"]).exit_code == 0
    with app.app_context():
        for product in (1, 2):
            db.session.execute(text(
                "INSERT INTO products (id, name, price, sku, created_at, updated_at, version)"
                " VALUES (:id, '旧商品', 1, :sku, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"),
                {"id": product, "sku": f"OLD-{product}"})
        ledger = ((10, 1, 1, "2026-01-01 08:00:00"), (11, 2, 1, "2026-01-01 09:00:00"), (12, 1, 2, "2026-01-02 08:00:00"),
                  (14, 2, 2, "2026-01-02 23:59:59"))
        for log_id, product, seq, when in ledger:
            db.session.execute(text(
                "INSERT INTO stock_logs (id, product_id, seq, action, quantity, before_quantity, after_quantity, sku,"
                " product_name, created_at, prev_hash, hash) VALUES (:id, :product, :seq, 'in', 1, 0, 1, 'OLD', '旧商品',"
                " :when, '', '')"), {"id": log_id, "product": product, "seq": seq, "when": when})
        for day, shard, movements in (("2026-01-01", 0, 2), ("2026-01-02", 0, 1), ("2026-01-02", 2, 1)):
            db.session.execute(text("INSERT INTO movement_daily (day, shard, in_movements, in_quantity, out_movements,"
                                    " out_quantity, adjust_movements, adjust_quantity) VALUES (:day, :shard, :n, :n,"
                                    " 0, 0, 0, 0)"), {"day": day, "shard": shard, "n": movements})
        db.session.commit()
        db.engine.dispose()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        rows = db.session.execute(text("SELECT day, shard, first_id, last_id FROM movement_daily ORDER BY day, shard")).all()
        db.engine.dispose()
    assert [(str(day), shard, first, last) for day, shard, first, last in rows] == [
        ("2026-01-01", 0, 10, 11), ("2026-01-02", 0, 12, 14), ("2026-01-02", 2, 12, 14)]
    assert runner.invoke(args=["db", "downgrade", "9c3e5b7a1d42"]).exit_code == 0


def test_level_migrations_count_each_warehouses_live_levels_and_copy_names(empty_database_url):
    """Counts per warehouse and shard start from the levels already there; those of
    deleted products are not counted. Each level gets its product's name and SKU."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": empty_database_url, "AUTO_CREATE_SCHEMA": False})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "9c3e5b7a1d42"]).exit_code == 0
    levels = {1: (1, 2, 3, 17), 2: (1, 17)}  # warehouse → products; product 3 deleted
    with app.app_context():
        first = db.session.scalar(text("SELECT id FROM warehouses"))
        db.session.execute(text("INSERT INTO warehouses (id, code, name, created_at, updated_at)"
                                " VALUES (:id, 'OLD-2', '旧仓', :now, :now)"), {"id": first + 1, "now": NOW})
        for pid in (1, 2, 3, 17):
            deleted = NOW if pid == 3 else None
            db.session.execute(text(
                "INSERT INTO products (id, name, price, sku, created_at, updated_at, deleted_at, version)"
                " VALUES (:id, :name, 1, :sku, :now, :now, :deleted, 1)"),
                {"id": pid, "name": f"旧商品{pid}", "sku": f"OLD-{pid}", "now": NOW, "deleted": deleted})
            db.session.execute(text("INSERT INTO stock (product_id, quantity, min_quantity, updated_at, deleted_at)"
                                    " VALUES (:id, 0, 0, :now, :deleted)"), {"id": pid, "now": NOW, "deleted": deleted})
        for number, products in levels.items():
            for pid in products:
                db.session.execute(text(
                    "INSERT INTO stock_levels (product_id, warehouse_id, quantity, reserved, min_quantity, updated_at,"
                    " deleted_at) VALUES (:pid, :wid, 0, 0, 0, :now, :deleted)"),
                    {"pid": pid, "wid": first + number - 1, "now": NOW, "deleted": NOW if pid == 3 else None})
        db.session.commit()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        rows = db.session.execute(text("SELECT warehouse_id, shard, live FROM level_counts")).all()
        copies = db.session.execute(text("SELECT product_id, name, sku FROM stock_levels")).all()
        db.engine.dispose()
    assert sorted(map(tuple, rows)) == [(first, 1, 2), (first, 2, 1), (first + 1, 1, 2)]
    assert {tuple(row) for row in copies} == {(pid, f"旧商品{pid}", f"OLD-{pid}") for pid in (1, 2, 3, 17)}
    client = app.test_client()
    pages = [client.get(f"/api/warehouses/{wid}/stock", query_string={"sort": "-name"}).get_json()["data"]
             for wid in (first, first + 1)]
    assert [page["pagination"]["total"] for page in pages] == [3, 2]
    assert [[row["product_id"] for row in page["items"]] for page in pages] == [[2, 17, 1], [17, 1]]
    result = runner.invoke(args=["db", "downgrade", "9c3e5b7a1d42"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.engine.dispose()
