"""A limit on how many requests of one kind run at once across every worker process of
a host: each slot is a lock file held with flock, which the kernel releases when its
holder ends, even by SIGKILL, so a slot is never lost to a killed worker. An SQLite
database keeps its slots beside its file (they go when its directory goes); a server
database's slots sit in the temporary directory, one set per database."""
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from utils.exceptions import RateLimited


class WorkSlots:
    def __init__(self, kind: str, database_uri: str, count: int, busy_message: str):
        self.paths = [f"{_slot_prefix(kind, database_uri)}-{n}.lock" for n in range(count)]
        self.busy_message = busy_message

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Run the block in a free slot, or refuse at once with 429 when all are taken."""
        for path in self.paths:
            handle = open(path, "a")  # noqa: SIM115 - held until the block ends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                handle.close()  # closing the file releases its lock
            return
        raise RateLimited(self.busy_message, {"limit": len(self.paths)}, headers={"Retry-After": "1"})


def _slot_prefix(kind: str, database_uri: str) -> str:
    """Where one database's slots of one kind live, shared by every worker that serves it."""
    url = make_url(database_uri)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"{os.path.abspath(url.database)}.{kind}"
    # An in-memory SQLite database is one process's own.
    owner = database_uri if url.database not in (None, "", ":memory:") else f"{database_uri}#{os.getpid()}"
    digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"inventory-{kind}-{digest}")
