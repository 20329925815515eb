"""A limit on how many requests of one kind run at once across every worker process of
a host: each slot is a lock file held with flock, which the kernel releases when its
holder ends, even by SIGKILL, so a slot is never lost to a killed worker."""
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
        url = make_url(database_uri)
        # Workers of one service share its database; an in-memory SQLite database is one process's own.
        owner = database_uri if url.database not in (None, "", ":memory:") else f"{database_uri}#{os.getpid()}"
        digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
        self.paths = [os.path.join(tempfile.gettempdir(), f"inventory-{kind}-{digest}-{n}.lock") for n in range(count)]
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
