"""gunicorn settings, each from the environment or the project's `.env` (as the app
reads it: a variable already set wins over the file); `-b`/`-w` on the command line win.

- Sync workers, 2 × cores + 1 by default: a request holds a database lock for a few
  milliseconds at most, so processes (not threads) give real parallelism on reads and
  a clean crash boundary. Each worker keeps its own small connection pool. A sync
  worker reads its client's request itself, so a client sending a byte at a time holds
  it: these workers must never face clients directly, only Nginx (deploy/nginx), which
  passes on whole requests. Hence the loopback default bind.
- `timeout` kills a stuck worker; `graceful_timeout` lets in-flight requests finish
  on SIGTERM (a deploy or `systemctl restart`) before workers are stopped. The app's
  own limits on waiting for the database (config.py: DB_READ_TIMEOUT,
  SQLITE_BUSY_TIMEOUT) end a request with a 503 well before the 30 s default.
- `max_requests` with jitter recycles workers now and then, never all at once, so a
  slow leak cannot grow without bound.
- `preload_app`: the master imports the app once and every worker, a recycled one
  too, is a fork of it. Importing the app costs ~0.9 s of CPU, so re-importing it
  in each recycled worker took ~12 % of a busy server's throughput. A code change
  therefore needs a restart (`systemctl restart`); HUP restarts the workers on the
  code already loaded. GUNICORN_PRELOAD=false imports the app in each worker instead.
- What the app loaded is frozen out of the garbage collector (`gc.freeze`) in the
  master before forking and in each worker once it is ready: otherwise each worker's
  full collections walk all ~100,000 of those objects every few seconds under traffic
  (~55 ms of CPU each here, 65–215 ms of a request's time under load).
- Request lines up to 8 KB (gunicorn's most; Nginx's default buffers take as much):
  a list's cursor holds its row's sort value, a name of up to 200 characters.
- The app refuses to start when its database timeouts add up to gunicorn's `timeout`
  or more (config.check_request_budget), also when `-t` on the command line sets it.
- The app writes one JSON line per request itself, so gunicorn's access log is off
  unless GUNICORN_ACCESSLOG names a file (or `-`).
- Prometheus metrics from every worker are summed through files in
  PROMETHEUS_MULTIPROC_DIR. Unless set, a fresh temporary directory named after the
  master's pid, removed when the master exits (also when the app fails to load); a
  master killed with SIGKILL cannot, so each start also removes the directories of
  masters that are gone: those whose owner lock nobody holds any more.
"""
import atexit
import fcntl
import gc
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

from dotenv import load_dotenv

load_dotenv(Path(__file__).resolve().parent / ".env")

bind = os.environ.get("GUNICORN_BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
limit_request_line = 8190
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").strip().lower() not in {"0", "false", "no", "off"}
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
# gunicorn's largest: every query the API documents fits (the stock list with each text
# filter at its length limit in 4-byte characters is ~5.2 KB); longer lines get a JSON 414.
limit_request_line = 8190
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# gunicorn's control socket (for `gunicornc`) defaults to one path per user, which two
# instances on one host (deploy/systemd/inventory@.service) would both claim: off unless
# GUNICORN_CONTROL_SOCKET names this instance's own path.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# Which master made the metrics directory itself (pid:path): that one removes it on exit.
OWN_METRICS_DIR = "INVENTORY_OWN_METRICS_DIR"
METRICS_DIR_PREFIX = "inventory-metrics-"
# In a directory it made, the master holds an flock on this file for as long as it (or a
# worker it forked) lives; the kernel lets go of it however they end, SIGKILL included.
OWNER_LOCK = ".owner"


def _remove_own_metrics_dir() -> None:
    """At the master's exit, also when the app failed to load (gunicorn's on_exit hook
    does not run then). Workers inherit the handler and skip it: their pid is not the
    master's. A master started by USR2 is a new program and makes its own (pre_exec)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.environ.get(OWN_METRICS_DIR) == f"{os.getpid()}:{directory}":
        shutil.rmtree(directory, ignore_errors=True)


def _remove_abandoned_metrics_dirs(root: str) -> None:
    """Remove the directories under `root` that masters made and left without removing
    (killed with SIGKILL): those whose owner lock can be taken. One still in use, or
    one whose lock is not there yet, is left alone."""
    for directory in Path(root).glob(METRICS_DIR_PREFIX + "*"):
        try:
            lock = os.open(directory / OWNER_LOCK, os.O_RDWR)
        except OSError:  # no lock: not one of ours, or a master is making it right now
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(directory, ignore_errors=True)
        except BlockingIOError:  # its master, or a worker it left, still runs
            pass
        finally:
            os.close(lock)


def _make_own_metrics_dir() -> str:
    """A fresh directory, locked before its lock file can be seen: created under a
    temporary name, locked, then renamed into place."""
    directory = Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))
    lock = os.open(directory / f"{OWNER_LOCK}.new", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # held until this process and its workers are gone
    os.rename(directory / f"{OWNER_LOCK}.new", directory / OWNER_LOCK)
    return str(directory)


if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # the config is read again on each HUP
    _remove_abandoned_metrics_dirs(tempfile.gettempdir())
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _make_own_metrics_dir()
    os.environ[OWN_METRICS_DIR] = f"{os.getpid()}:{os.environ['PROMETHEUS_MULTIPROC_DIR']}"
    atexit.register(_remove_own_metrics_dir)


def on_starting(server):
    """Start every run with empty metric files: counters restart with the server. And
    answer what gunicorn refuses itself (a request line over limit_request_line) in the
    JSON envelope, in every worker forked from here on."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    for metrics_file in directory.glob("*.db"):
        metrics_file.unlink()
    import gunicorn_errors

    gunicorn_errors.install()


def when_ready(server):
    """The master loaded the app (and brought the schema up to date) before forking:
    close its pooled database connections, so no two workers ever share one, and
    freeze what it loaded, so that no worker's collector walks it even once."""
    if server.cfg.preload_app:
        from db.reads import close_pooled_connections

        close_pooled_connections(server.app.wsgi())
        server.log.info("master: %d objects frozen out of garbage collection", _freeze_heap())


def post_worker_init(worker):
    """A worker ready to serve checks the app's database timeouts against the timeout it
    really runs under (`-t` may have changed it), then freezes what it has loaded (all of
    the app without preload). A worker that fails the check stops gunicorn: a worker
    that cannot boot halts the master."""
    import heartbeat
    from config import check_request_budget

    check_request_budget(worker.wsgi.config, worker.cfg.timeout)
    heartbeat.register(worker.notify)  # long exports report progress (heartbeat.py)
    worker.log.info("worker %s: %d objects frozen out of garbage collection", worker.pid, _freeze_heap())


def _freeze_heap() -> int:
    """Collect once, then move every object allocated so far out of the collector's
    reach for good: the app's modules, routes and compiled statements live as long as
    the process. Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def pre_exec(server):
    """A new master started by USR2 makes its own metrics directory: it must not inherit
    this one, which this master removes when it exits."""
    if os.environ.get(OWN_METRICS_DIR):
        for name in ("PROMETHEUS_MULTIPROC_DIR", OWN_METRICS_DIR):
            server.cfg.env_orig.pop(name, None)


def child_exit(server, worker):
    """A recycled worker's live gauges leave with it; its counters stay counted."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
