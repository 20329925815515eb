"""Instructions per request: `python -m bench.instructions [--db sqlite|mysql]`.

Requests per second and CPU time on a shared 2-core machine drift by tens of percent
from one minute to the next; the number of instructions a request executes does not.
Each scenario runs in a process of its own under valgrind's callgrind (Debian package
`valgrind`), through the WSGI app directly (no HTTP, no gunicorn), and only the measured
requests are counted, after a warm-up. The same code gives the same count to within
about one percent, so a change to the request path can be judged by a single run.

Counted: the service's Python, the libraries it calls and the database driver, SQLite
itself included. Not counted: the kernel (system calls, fsync), the MySQL server.
"""
import argparse
import gc
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from werkzeug.test import EnvironBuilder

from bench import ROOT, mysql, seed, service_env
from bench.bare_app import prepare_floor

PRODUCTS = 2_000
MOVEMENTS = 20_000
WARM_UP = 100
HOT_PRODUCTS = 20  # created by each write run, with room for every reduction
# name: (app, paths of the requests; `i` runs over 0, 1, 2, …)
SCENARIOS = {
    "ceiling: bare Flask": ("bench.bare_app", lambda i: ("GET", f"/ping?n={i}", None)),
    "floor: one-row read": ("bench.bare_app", lambda i: ("GET", f"/floor/stock/{i % PRODUCTS + 1}", None)),
    "product read": ("main", lambda i: ("GET", f"/api/products/{i % PRODUCTS + 1}", None)),
    "stock read": ("main", lambda i: ("GET", f"/api/stock/product/{i % PRODUCTS + 1}", None)),
    "stock add/reduce": ("main", lambda i: ("POST", "/api/stock/add" if i % 2 else "/api/stock/reduce", {
        "product_id": PRODUCTS + 1 + i % HOT_PRODUCTS, "quantity": 1, "reason": "压测", "operator": "bench"})),
    "floor: smallest durable write": ("bench.bare_app", lambda i: (
        "POST", "/floor/stock/add" if i % 2 else "/floor/stock/reduce",
        {"product_id": PRODUCTS + 1 + i % HOT_PRODUCTS, "quantity": 1, "reason": "压测", "operator": "bench"})),
}


def _measured_run(scenario: str, count: int) -> None:
    """In the process callgrind watches: warm up, then count `count` requests only.
    The WSGI environments are built beforehand, so only the app's own work is counted."""
    module, request_of = SCENARIOS[scenario]
    app = __import__(module, fromlist=["app"]).app
    if module == "main":
        client = app.test_client()
        for index in range(HOT_PRODUCTS):
            client.post("/api/products/", json={"name": f"计数商品{index}", "sku": f"COUNT-{os.getpid()}-{index}",
                                                "price": 1, "initial_quantity": 1_000_000})
    environs = []
    for i in range(WARM_UP + count):
        method, path, body = request_of(i)
        environs.append(EnvironBuilder(path=path, method=method, json=body).get_environ())

    def send(environ: dict) -> None:
        statuses = []
        body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        if not statuses[0].startswith("2"):
            raise SystemExit(f"{environ['PATH_INFO']}: {statuses[0]} {body.decode()}")

    for environ in environs[:WARM_UP]:
        send(environ)
    # A full collection now, so that one falling inside the count (when depends on
    # everything the process allocated before) does not add tens of millions.
    gc.collect()
    subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())], check=True, capture_output=True)
    for environ in environs[WARM_UP:]:
        send(environ)
    subprocess.run(["callgrind_control", "--instr=off", str(os.getpid())], check=True, capture_output=True)


def _instructions_per_request(scenario: str, env: dict, count: int) -> float:
    with tempfile.TemporaryDirectory(prefix="inventory-instructions-") as scratch:
        out = Path(scratch) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                        sys.executable, "-m", "bench.instructions", "--measured-run", scenario, "--requests", str(count)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        totals = [int(line.split()[1]) for line in out.read_text().splitlines() if line.startswith("totals:")]
    return sum(totals) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "mysql"], default="sqlite")
    parser.add_argument("--mysql-driver", choices=mysql.DRIVERS, default=mysql.installed_driver())
    parser.add_argument("--requests", type=int, default=500, help="measured requests per scenario")
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--measured-run", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measured_run:
        _measured_run(args.measured_run, args.requests)
        return

    with tempfile.TemporaryDirectory(prefix="inventory-instructions-") as scratch:
        url, floor_url = (f"sqlite:///{scratch}/{name}.db" if args.db == "sqlite" else mysql.fresh_database(
            f"inventory_{name}", args.mysql_driver) for name in ("instructions", "instructions_floor"))
        env = {**service_env(url), "FLOOR_DATABASE_URL": floor_url}
        seed(env, PRODUCTS, MOVEMENTS)
        prepare_floor(floor_url, PRODUCTS + HOT_PRODUCTS)
        rows = [(name, _instructions_per_request(name, env, args.requests))
                for name in SCENARIOS if not args.only or args.only in name]
    database = args.db if args.db == "sqlite" else f"mysql ({args.mysql_driver})"
    print(f"\n{database}: instructions per request, {args.requests} requests after {WARM_UP} to warm up\n")
    print("| request | instructions | × bare Flask |\n| --- | ---: | ---: |")
    bare = dict(rows).get("ceiling: bare Flask")
    for name, count in rows:
        print(f"| {name} | {count:,.0f} | {count / bare:.2f} |" if bare else f"| {name} | {count:,.0f} | |")


if __name__ == "__main__":
    main()
