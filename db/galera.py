"""MariaDB Galera: is this server a cluster node, and a lock that holds across nodes.

On a Galera cluster `GET_LOCK` and row locks hold on the node that took them only; what
every node agrees on is the order of committed writes. So the cluster-wide lock is a
lease row, taken by an UPDATE that commits (of several nodes taking it at once,
certification lets one through and refuses the others with a deadlock error) and given
back by another."""
import os
import socket
import time
import uuid
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

LEASE_SECONDS = 300  # a holder that died is taken over after this; longer than any start-up migration
WAIT_SECONDS = 360  # how long a start-up waits for the lease before it gives up
POLL_SECONDS = 0.2
DEADLOCK = 1213
# "WSREP has not yet prepared node for application use": the node is not synced or not in
# the primary component. A connection opened then fails at once, even its first SHOW.
NODE_NOT_READY = 1047

CREATE_LEASE_TABLE = text(
    "CREATE TABLE IF NOT EXISTS schema_lease (id TINYINT NOT NULL PRIMARY KEY, holder VARCHAR(120) NULL,"
    " expires_at DATETIME(6) NULL) ENGINE=InnoDB")
INSERT_LEASE_ROW = text("INSERT IGNORE INTO schema_lease (id) VALUES (1)")
TAKE_LEASE = text(
    "UPDATE schema_lease SET holder = :holder,"
    f" expires_at = UTC_TIMESTAMP(6) + INTERVAL {LEASE_SECONDS} SECOND"
    " WHERE id = 1 AND (holder IS NULL OR expires_at < UTC_TIMESTAMP(6))")
GIVE_BACK_LEASE = text("UPDATE schema_lease SET holder = NULL, expires_at = NULL WHERE id = 1 AND holder = :holder")


def error_code(exc: OperationalError) -> int | None:
    """The MySQL error number of a driver error SQLAlchemy wrapped."""
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_cluster_node(connection: Connection) -> bool:
    """True on a MariaDB server with wsrep on (a Galera node); False on a lone server,
    MySQL and MariaDB alike."""
    row = connection.execute(text("SHOW VARIABLES LIKE 'wsrep_on'")).first()
    return row is not None and row[1] == "ON"


def _try_to_take(connection: Connection, holder: str) -> bool:
    try:
        connection.execute(INSERT_LEASE_ROW)
        taken = connection.execute(TAKE_LEASE, {"holder": holder}).rowcount == 1
        connection.commit()
        return taken
    except OperationalError as exc:
        connection.rollback()
        if error_code(exc) != DEADLOCK:
            raise
        return False  # another node took it (or made the row) in the same moment


@contextmanager
def cluster_lease(engine: Engine):
    """Hold the cluster-wide schema lease while the block runs."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    with engine.connect() as connection:
        connection.execute(CREATE_LEASE_TABLE)  # DDL runs in the same order on every node
        deadline = time.monotonic() + WAIT_SECONDS
        while not _try_to_take(connection, holder):
            if time.monotonic() > deadline:
                raise RuntimeError(f"schema_lease still held after {WAIT_SECONDS} s; is a migration running?")
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            connection.execute(GIVE_BACK_LEASE, {"holder": holder})
            connection.commit()
