"""`flask db upgrade` on an empty database gives exactly the models' schema."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from database import db
from main import create_app


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
