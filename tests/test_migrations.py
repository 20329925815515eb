"""`flask db upgrade` on an empty database gives exactly the models' schema."""
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from database import db
from main import create_app
from tests.conftest import SHARED_DATABASE_URL


@pytest.fixture
def empty_database_url(tmp_path):
    """A brand-new empty database: a SQLite file, or a fresh MariaDB database."""
    if not SHARED_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    name = f"inv_mig_{uuid.uuid4().hex[:10]}"
    server = create_engine(make_url(SHARED_DATABASE_URL).set(database=""))
    with server.begin() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    try:
        yield make_url(SHARED_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.begin() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


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
