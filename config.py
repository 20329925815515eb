"""Settings per environment, read once from environment variables (and `.env`)."""
import os
from pathlib import Path

from dotenv import load_dotenv

VERSION = "1.0.0"
BASE_DIR = Path(__file__).resolve().parent
load_dotenv(BASE_DIR / ".env")


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def default_sqlite_url() -> str:
    """Embedded database in `instance/`, so `python main.py` needs no setup."""
    instance = BASE_DIR / "instance"
    instance.mkdir(exist_ok=True)
    return f"sqlite:///{instance / 'inventory.db'}"


class Config:
    """Shared defaults; every value can be overridden from the environment."""

    SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-change-me"
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or default_sqlite_url()
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": _env_bool("DB_POOL_PRE_PING", True),
        "pool_recycle": _env_int("DB_POOL_RECYCLE", 1800),
    }
    # Server databases only (MySQL/MariaDB): pool per worker process, and timeouts so a
    # database that went away answers 503 in seconds instead of hanging a worker.
    DB_POOL_SIZE = _env_int("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = _env_int("DB_MAX_OVERFLOW", 5)
    DB_POOL_TIMEOUT = _env_int("DB_POOL_TIMEOUT", 10)
    DB_CONNECT_TIMEOUT = _env_int("DB_CONNECT_TIMEOUT", 3)
    DB_READ_TIMEOUT = _env_int("DB_READ_TIMEOUT", 30)
    # Seconds a SQLite writer waits for the write lock before answering 503.
    SQLITE_BUSY_TIMEOUT = _env_int("SQLITE_BUSY_TIMEOUT", 30)
    # FULL: a committed stock change survives a power cut; NORMAL is faster.
    SQLITE_SYNCHRONOUS = os.environ.get("SQLITE_SYNCHRONOUS", "FULL").upper()
    AUTO_CREATE_SCHEMA = _env_bool("AUTO_CREATE_SCHEMA", True)
    # migrate: run the Alembic migrations at start-up; create_all: tables from the models.
    SCHEMA_SETUP = os.environ.get("SCHEMA_SETUP", "migrate")
    # How long a stored Idempotency-Key response is replayed (then pruned).
    IDEMPOTENCY_TTL_HOURS = _env_int("IDEMPOTENCY_TTL_HOURS", 24)
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 1024 * 1024)
    # The web console's session cookie (CSRF tokens, flash messages).
    SESSION_COOKIE_SAMESITE = "Lax"
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")  # json | text
    # How many proxies (Nginx) stand in front and set X-Forwarded-*; 0 trusts none.
    PROXY_HOPS = _env_int("PROXY_HOPS", 0)
    DEBUG = False
    TESTING = False


class DevelopmentConfig(Config):
    DEBUG = _env_bool("FLASK_DEBUG", False)


class TestingConfig(Config):
    TESTING = True
    SCHEMA_SETUP = os.environ.get("SCHEMA_SETUP", "create_all")  # fast; migrations have their own tests
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"


class ProductionConfig(Config):
    pass


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for(name: str | None) -> type[Config]:
    """The config class named by `name` or `APP_ENV` (default: development)."""
    key = (name or os.environ.get("APP_ENV") or "development").lower()
    if key not in CONFIGS:
        raise RuntimeError(f"APP_ENV must be one of {sorted(CONFIGS)}, not {key!r}")
    return CONFIGS[key]
