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


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


DEFAULT_SECRET_KEY = "dev-only-change-me"


def default_sqlite_url() -> str:
    """Embedded database in `instance/`, so `python main.py` needs no setup."""
    instance = BASE_DIR / "instance"
    instance.mkdir(exist_ok=True)
    return f"sqlite:///{instance / 'inventory.db'}"


class Config:
    """Shared defaults; every value can be overridden from the environment."""

    SECRET_KEY = os.environ.get("SECRET_KEY") or DEFAULT_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or default_sqlite_url()
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": _env_bool("DB_POOL_PRE_PING", True),
        "pool_recycle": _env_int("DB_POOL_RECYCLE", 1800),
    }
    # gunicorn kills a worker whose request runs this long (GUNICORN_TIMEOUT, which
    # gunicorn.conf.py reads too); every wait for the database below must end before it.
    REQUEST_TIMEOUT = _env_int("GUNICORN_TIMEOUT", 30)
    # Server databases only (MySQL/MariaDB): pool per worker process, and timeouts so a
    # database that went away or hangs answers 503 in seconds instead of hanging a worker.
    # A request waits at most read + connect + read (a dropped single-row read is tried
    # once more): 23 s, under gunicorn's 30 s timeout, so it always answers itself. Under
    # a `flask` command (a migration, a seed) statements run without a read timeout.
    DB_POOL_SIZE = _env_int("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = _env_int("DB_MAX_OVERFLOW", 5)
    DB_POOL_TIMEOUT = _env_int("DB_POOL_TIMEOUT", 10)
    DB_CONNECT_TIMEOUT = _env_int("DB_CONNECT_TIMEOUT", 3)
    DB_READ_TIMEOUT = _env_int("DB_READ_TIMEOUT", 10)
    # Seconds a write keeps retrying deadlocks and Galera certification conflicts (with
    # jittered backoff) before it answers 503 with Retry-After: well under gunicorn's 30 s.
    DB_RETRY_BUDGET = _env_float("DB_RETRY_BUDGET", 5.0)
    # Galera: every read waits until this node has applied what the cluster committed
    # before it (wsrep_sync_wait=1), so a write made through one node is seen through another.
    DB_CAUSAL_READS = _env_bool("DB_CAUSAL_READS", False)
    # Seconds a SQLite writer waits for its turn, and then again for the file's write lock
    # (held by another program), before answering 503: at most 20 s, under gunicorn's 30 s.
    SQLITE_BUSY_TIMEOUT = _env_int("SQLITE_BUSY_TIMEOUT", 10)
    # FULL: a committed stock change survives a power cut; NORMAL is faster.
    SQLITE_SYNCHRONOUS = os.environ.get("SQLITE_SYNCHRONOUS", "FULL").upper()
    AUTO_CREATE_SCHEMA = _env_bool("AUTO_CREATE_SCHEMA", True)
    # migrate: run the Alembic migrations at start-up; create_all: tables from the models.
    SCHEMA_SETUP = os.environ.get("SCHEMA_SETUP", "migrate")
    # How long a stored Idempotency-Key response is replayed (then pruned).
    IDEMPOTENCY_TTL_HOURS = _env_int("IDEMPOTENCY_TTL_HOURS", 24)
    # How long a reservation holds its units when the request names no `expires_in`.
    RESERVATION_TTL_SECONDS = _env_int("RESERVATION_TTL_SECONDS", 900)
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 1024 * 1024)
    # Spreadsheet imports (docs/import-export.md): the file's size (the one body allowed
    # past MAX_CONTENT_LENGTH), its data rows, one cell's characters, and how many errors
    # a refusal lists (it counts them all). The command line takes 100 × the size, any rows.
    IMPORT_MAX_BYTES = _env_int("IMPORT_MAX_BYTES", 10 * 1024 * 1024)
    IMPORT_MAX_ROWS = _env_int("IMPORT_MAX_ROWS", 50_000)
    IMPORT_MAX_CELL = _env_int("IMPORT_MAX_CELL", 10_000)
    IMPORT_MAX_ERRORS = _env_int("IMPORT_MAX_ERRORS", 1000)
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")  # json | text
    # How many proxies (Nginx) stand in front and set X-Forwarded-*; 0 trusts none.
    PROXY_HOPS = _env_int("PROXY_HOPS", 0)
    # Access control: API keys with roles. Off in development unless set, so the
    # first five minutes need no key; the production config turns it on.
    AUTH_REQUIRED = _env_bool("AUTH_REQUIRED", False)
    # Rate limits per caller (API key, or client address without one), in the
    # `limits` notation ("600 per minute;10000 per day"). A caller without a key gets
    # RATELIMIT_ANONYMOUS while keys are required (it can only probe: every request it
    # makes is refused) and RATELIMIT_OPERATOR while they are not (it is a real client
    # then, on a private network). On in production; in development only when set.
    # RATELIMIT_STORAGE_URI (redis://…) shares the counters across workers and instances.
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", True)
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or "memory://"
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "inventory")
    RATELIMIT_STRATEGY = os.environ.get("RATELIMIT_STRATEGY", "fixed-window")
    RATELIMIT_ANONYMOUS = os.environ.get("RATELIMIT_ANONYMOUS", "120 per minute")
    RATELIMIT_VIEWER = os.environ.get("RATELIMIT_VIEWER", "600 per minute")
    RATELIMIT_OPERATOR = os.environ.get("RATELIMIT_OPERATOR", "600 per minute")
    RATELIMIT_ADMIN = os.environ.get("RATELIMIT_ADMIN", "1200 per minute")
    # `GET /api/logs/verify` checks one page at a time: it stops after the product (or chunk of
    # days) that reaches VERIFY_PAGE_ROWS ledger rows or VERIFY_PAGE_SECONDS, far under gunicorn's
    # timeout, and at most VERIFY_CONCURRENCY pages run at once per host (the rest answer
    # 429 at once), so verifying never ties up every worker. `ledger verify` has no budget.
    VERIFY_PAGE_ROWS = _env_int("VERIFY_PAGE_ROWS", 50_000)
    VERIFY_PAGE_SECONDS = _env_float("VERIFY_PAGE_SECONDS", 3.0)
    VERIFY_CONCURRENCY = _env_int("VERIFY_CONCURRENCY", 1)
    # The time zone the console (and the human columns of exports) show times in, an
    # IANA name such as Asia/Shanghai; the API always answers UTC.
    DISPLAY_TIMEZONE = os.environ.get("DISPLAY_TIMEZONE") or "UTC"
    # Browser origins allowed to call the API (comma-separated); none by default.
    CORS_ORIGINS = _env_list("CORS_ORIGINS")
    # The console's login session: it ends at logout and after this many minutes unused.
    CONSOLE_SESSION_IDLE_MINUTES = _env_int("CONSOLE_SESSION_IDLE_MINUTES", 30)
    # The console's login session cookie.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    # Webhooks (docs/events.md): a 2xx within WEBHOOK_TIMEOUT seconds delivers; otherwise
    # retried after WEBHOOK_RETRY_BASE seconds, each wait twice the one before, until
    # WEBHOOK_MAX_ATTEMPTS attempts (12: about a day), then `failed`.
    WEBHOOK_TIMEOUT = _env_float("WEBHOOK_TIMEOUT", 10.0)
    WEBHOOK_RETRY_BASE = _env_float("WEBHOOK_RETRY_BASE", 10.0)
    WEBHOOK_MAX_ATTEMPTS = _env_int("WEBHOOK_MAX_ATTEMPTS", 12)
    # Refuse receivers on private, loopback and link-local addresses (off: self-hosted
    # receivers usually sit on the LAN).
    WEBHOOK_BLOCK_PRIVATE = _env_bool("WEBHOOK_BLOCK_PRIVATE", False)
    # The worker: sends at once, at most this many of them to one receiver, and the
    # pause between rounds that found nothing to send.
    WEBHOOK_WORKER_THREADS = _env_int("WEBHOOK_WORKER_THREADS", 8)
    WEBHOOK_PER_RECEIVER = _env_int("WEBHOOK_PER_RECEIVER", 2)
    WEBHOOK_POLL_INTERVAL = _env_float("WEBHOOK_POLL_INTERVAL", 1.0)
    # Encrypts the stored webhook secrets; unset: derived from SECRET_KEY. Changing it
    # makes the stored secrets unreadable (rotate every webhook's secret afterwards).
    WEBHOOK_SECRET_KEY = os.environ.get("WEBHOOK_SECRET_KEY", "")
    DEBUG = False
    TESTING = False


class DevelopmentConfig(Config):
    APP_ENV = "development"
    DEBUG = _env_bool("FLASK_DEBUG", False)
    # A frontend on `make run` sends far more than any budget meant for strangers.
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", False)


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    # Off so the suite is never flaky; a test that checks limits turns it on.
    RATELIMIT_ENABLED = _env_bool("RATELIMIT_ENABLED", False)
    SCHEMA_SETUP = os.environ.get("SCHEMA_SETUP", "create_all")  # fast; migrations have their own tests
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"


class ProductionConfig(Config):
    APP_ENV = "production"
    AUTH_REQUIRED = _env_bool("AUTH_REQUIRED", True)
    DEBUG = _env_bool("FLASK_DEBUG", False)
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", True)


def check_production_settings(config: dict) -> None:
    """Refuse to start production with a known secret or the debugger on: either one
    lets anyone forge the console's session cookie or run code on the server."""
    if config["SECRET_KEY"] in ("", DEFAULT_SECRET_KEY):
        raise RuntimeError("production needs its own SECRET_KEY (e.g. python3 -c 'import secrets; "
                           "print(secrets.token_hex(32))'); the default one is public")
    if config["DEBUG"]:
        raise RuntimeError("production refuses to run with FLASK_DEBUG on")


def longest_database_wait(config: dict) -> tuple[int, str]:
    """The longest a request can wait for the configured database before it answers 503,
    and the sum that makes it (the budgets explained beside the settings above)."""
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        busy = config["SQLITE_BUSY_TIMEOUT"]
        return 2 * busy, f"2 × SQLITE_BUSY_TIMEOUT ({busy})"
    read, connect, retries = config["DB_READ_TIMEOUT"], config["DB_CONNECT_TIMEOUT"], config["DB_RETRY_BUDGET"]
    return (2 * read + connect + retries,
            f"2 × DB_READ_TIMEOUT ({read}) + DB_CONNECT_TIMEOUT ({connect}) + DB_RETRY_BUDGET ({retries})")


def check_request_budget(config: dict, worker_timeout: int) -> None:
    """Refuse to start when a request could wait for the database as long as gunicorn lets
    it run: the worker would be killed and the client get gunicorn's HTML 500 instead of
    the JSON 503 the timeouts exist to give."""
    wait, made_of = longest_database_wait(config)
    if wait >= worker_timeout:
        raise RuntimeError(
            f"database timeouts too long: a request may wait {made_of} = {wait} s for the database, "
            f"not less than gunicorn's timeout ({worker_timeout} s, GUNICORN_TIMEOUT); lower them "
            f"(defaults: SQLITE_BUSY_TIMEOUT=10, DB_READ_TIMEOUT=10, DB_CONNECT_TIMEOUT=3, DB_RETRY_BUDGET=5) "
            f"or raise GUNICORN_TIMEOUT")


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
