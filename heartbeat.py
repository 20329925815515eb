"""A worker busy with one long answer that is still making progress tells gunicorn's
master so. A sync worker reports itself alive only between requests, so an export of a
million movements (a minute of steady work) was killed at the worker timeout halfway
through. The export reports after each page it reads: a worker stuck on the database or
on a client that stopped reading reports nothing and is still killed on time."""
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_notify: Callable[[], None] | None = None
KEEP_ALIVE_EVERY = 5  # seconds between reports while one long step runs


def register(notify: Callable[[], None]) -> None:
    """Called by gunicorn.conf.py in each worker with the worker's own `notify`."""
    global _notify
    _notify = notify


def beat() -> None:
    """Progress: the master's timeout starts again (nothing outside gunicorn)."""
    if _notify is not None:
        _notify()


@contextmanager
def while_busy() -> Iterator[None]:
    """Report progress every few seconds while one long step that cannot report runs
    (compressing a finished XLSX: CPU work on a local file, no client and no database)."""
    if _notify is None:
        yield
        return
    done = threading.Event()

    def report() -> None:
        while not done.wait(KEEP_ALIVE_EVERY):
            beat()

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        reporter.join()
