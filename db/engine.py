"""Engine options per dialect, and whether limits meant for requests apply."""
import click
from sqlalchemy.engine import make_url


def serves_requests() -> bool:
    """False under a `flask` command other than `run` (db upgrade, seed, ledger verify…):
    its long statements and waits are its work, so the limits that make a request answer
    503 before gunicorn's timeout do not apply to it."""
    command = click.get_current_context(silent=True)
    return command is None or command.info_name == "run"


def engine_options(config: dict) -> dict:
    """Engine options for the configured database's dialect."""
    options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
    backend = make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()
    # The pool's ROLLBACK when a connection comes back (SQLAlchemy's default) stays, though
    # most returns follow a COMMIT: after a COMMIT the database refused, the connection
    # comes back with its transaction still open (tests/test_prepared_statements.py).
    if backend == "sqlite":
        options["pool_pre_ping"] = False  # a file does not drop connections; saves a query per request
    if backend == "mysql":
        # Row locks without gap locks: fewer needless waits and deadlocks.
        options.setdefault("isolation_level", "READ COMMITTED")
        options.setdefault("pool_size", config["DB_POOL_SIZE"])
        options.setdefault("max_overflow", config["DB_MAX_OVERFLOW"])
        options.setdefault("pool_timeout", config["DB_POOL_TIMEOUT"])
        connect_args = {"charset": "utf8mb4", "connect_timeout": config["DB_CONNECT_TIMEOUT"]}
        if serves_requests():
            connect_args |= {"read_timeout": config["DB_READ_TIMEOUT"], "write_timeout": config["DB_READ_TIMEOUT"]}
        if config["DB_CAUSAL_READS"]:
            # Galera: a read first waits until this node applied every write set the cluster
            # committed before it (docs/cluster.md). Both engines, the session's and the
            # single-row reads', are built from these options.
            connect_args["init_command"] = "SET SESSION wsrep_sync_wait = 1"
        options.setdefault("connect_args", connect_args)
    return options

