"""Lock waits of stock changes on one MariaDB server: `python -m bench.row_locks [--port P]`.

Seeds a fresh database with products (no movements), serves it with gunicorn (the
project's config; GUNICORN_WORKERS sets the workers), and has `--threads` clients add
one unit at a time to random products over HTTP. Prints requests/s, the answers by
status, what the server's `Innodb_row_lock%` counters moved meanwhile, and what
`ledger verify` says afterwards. The counters are the whole server's: run it where
nothing else writes. docs/cluster.md compares the sharded running totals against one
shard (models/shards.py `SHARDS = 1`).
"""
import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from bench import ROOT, mysql, seed, serve, service_env
from models.shards import SHARDS

COUNTERS = "SHOW GLOBAL STATUS LIKE 'Innodb_row_lock%'"


def _row_lock_counters(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as connection:
        counters = {name: int(value) for name, value in connection.execute(text(COUNTERS))}
    engine.dispose()
    return counters


def _adds(url: str, products: int, count: int, thread: int) -> Counter:
    """`count` adds of one unit to random products, one after another; their answers' statuses."""
    draw, statuses = random.Random(thread), Counter()
    with requests.Session() as session:
        for _ in range(count):
            body = {"product_id": draw.randint(1, products), "quantity": 1, "reason": "压测", "operator": "bench"}
            statuses[session.post(f"{url}/api/stock/add", json=body, timeout=60).status_code] += 1
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=4_000, help="adds in all, shared by the threads")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--port", type=int, default=8701)
    parser.add_argument("--mysql-database", default="inventory_row_locks", help="dropped and made afresh")
    args = parser.parse_args()

    url = mysql.fresh_database(args.mysql_database, mysql.installed_driver())
    env = service_env(url)
    seed(env, args.products, 0)
    log = Path(tempfile.mkdtemp(prefix="inventory-row-locks-")) / "gunicorn.log"
    server = serve("main:app", args.port, env, log)
    try:
        before, started = _row_lock_counters(url), time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            share = args.requests // args.threads
            statuses = sum(pool.map(lambda thread: _adds(server.url, args.products, share, thread),
                                    range(args.threads)), Counter())
        seconds, after = time.perf_counter() - started, _row_lock_counters(url)
    finally:
        server.process.terminate()
        server.process.wait(timeout=60)
    checked = subprocess.run([sys.executable, "-m", "flask", "--app", "main", "ledger", "verify", "--quiet"], cwd=ROOT,
                             env={**env, "LOG_LEVEL": "ERROR"}, capture_output=True, text=True)
    report = json.loads(checked.stdout)
    done = sum(statuses.values())
    print(f"SHARDS = {SHARDS}: {done} adds from {args.threads} threads over {args.products:,} products "
          f"in {seconds:.1f} s, {done / seconds:,.0f} requests/s, answers {dict(sorted(statuses.items()))}")
    print(f"row lock waits {after['Innodb_row_lock_waits'] - before['Innodb_row_lock_waits']}, "
          f"time waited {after['Innodb_row_lock_time'] - before['Innodb_row_lock_time']} ms")
    print(f"ledger verify: {report['logs_checked']} movements, {report['problems_total']} problems")


if __name__ == "__main__":
    main()
