"""A worker busy with one long answer that is still making progress tells gunicorn's
master so. A sync worker reports itself alive only between requests, so an export of a
million movements (a minute of steady work) was killed at the worker timeout halfway
through. The export reports after each page it reads: a worker stuck on the database or
on a client that stopped reading reports nothing and is still killed on time."""
from collections.abc import Callable

_notify: Callable[[], None] | None = None


def register(notify: Callable[[], None]) -> None:
    """Called by gunicorn.conf.py in each worker with the worker's own `notify`."""
    global _notify
    _notify = notify


def beat() -> None:
    """Progress: the master's timeout starts again (nothing outside gunicorn)."""
    if _notify is not None:
        _notify()
