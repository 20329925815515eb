"""Benchmark: `python -m bench [--db sqlite|mysql] [--products N] [--movements M] [--warehouses W] [--port P]`.

Seeds a fresh database, starts the service under gunicorn with the project's config
and, beside it, bare Flask endpoints under the same settings (bench/bare_app.py: the
ceiling of this stack on this machine, and the floors: the least a read and a durable
write can do on the same database), drives them with wrk and prints a table:
requests/s, p50, p99, errors, the ratio to the ceiling, the workers' CPU per request,
and their memory. bench/scenarios.py says what each row requests.

A shared machine's speed drifts by tens of percent from minute to minute, so every
throughput goal is measured in rounds of the ceiling, then the goal's floor and the
endpoint taking turns at going first; the table shows the round with the median ratio.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import requests

from bench import ROOT, mysql, seed, serve, service_env, wrk
from bench.bare_app import prepare_floor
from bench.scenarios import BARE_KINDS, BATCH_SIZE, CEILING, FLOORS, HOT_PRODUCTS, SCENARIOS, SCRIPTS, workloads

ROUNDS = 3  # rounds of ceiling, floor and endpoint behind each throughput goal


def _database(kind: str, directory: Path, driver: str, name: str) -> str:
    """A fresh database: a SQLite file in `directory`, or the MariaDB database `name`."""
    if kind == "sqlite":
        return f"sqlite:///{directory / name}.db"
    return mysql.fresh_database(name, driver)


def _workers(master: subprocess.Popen, column: str) -> list[int]:
    """One `ps` column (pid, rss, …) of each of the master's workers."""
    listing = subprocess.run(["ps", "--ppid", str(master.pid), "-o", f"{column}="], capture_output=True, text=True).stdout
    return [int(value) for value in listing.split()]


def _worker_rss_mb(master: subprocess.Popen) -> float:
    return max(_workers(master, "rss")) / 1024


def _cpu_ticks(pid: int) -> list[int]:
    """utime, stime, cutime, cstime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        return [int(field) for field in stat.read().rsplit(")", 1)[1].split()[11:15]]


def _workers_cpu_seconds(master: subprocess.Popen) -> float:
    """CPU time (user + system) of the master's workers so far: the live workers' own,
    plus what the master collected from those it reaped (recycled by max_requests)."""
    ticks = sum(_cpu_ticks(master.pid)[2:4])  # cutime + cstime: the reaped workers
    for pid in _workers(master, "pid"):
        try:
            ticks += sum(_cpu_ticks(pid)[0:2])  # utime + stime
        except FileNotFoundError:  # exited since the listing
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def _database_server_pids(kind: str) -> tuple[int, ...]:
    """The local MySQL/MariaDB server's processes, whose CPU a request also costs (none
    for SQLite, which runs inside the workers and is counted with them)."""
    if kind == "sqlite":
        return ()
    found = subprocess.run(["pidof", "mariadbd", "mysqld"], capture_output=True, text=True).stdout
    return tuple(int(pid) for pid in found.split())


def _database_cpu_seconds(pids: tuple[int, ...]) -> float:
    return sum(sum(_cpu_ticks(pid)[0:2]) for pid in pids) / os.sysconf("SC_CLK_TCK")


def _drive(scenario: tuple, loads: dict, duration: int, servers: dict, database_pids: tuple[int, ...]) -> wrk.Result:
    """One wrk run of a scenario, with the CPU its server's workers and the database
    server spent per request."""
    name, path, kind, connections, _ = scenario
    server = servers["bare" if kind in BARE_KINDS else "service"]
    values = {"seed": 1, "path": path, "size": BATCH_SIZE, **loads[kind]}
    script = SCRIPTS.get(kind, wrk.RANDOM_GET) % values
    spent, served = _workers_cpu_seconds(server.process), _database_cpu_seconds(database_pids)
    result = wrk.run(server.url, script, duration, connections, threads=connections if "walk" in kind else 2)
    spent, served = _workers_cpu_seconds(server.process) - spent, _database_cpu_seconds(database_pids) - served
    requests_done = max(1, result.requests)
    result = replace(result, worker_cpu_us=spent / requests_done * 1e6,
                     database_cpu_us=served / requests_done * 1e6 if database_pids else None)
    print(f"  {name}: {result.requests_per_second:,.0f} req/s, p99 {result.p99_ms:.1f} ms, {result.errors} errors, "
          f"{result.worker_cpu_us:,.0f} µs worker CPU per request", flush=True)
    return result


def _optional(microseconds: float | None) -> str:
    return "" if microseconds is None else f"{microseconds:,.0f}"


def _row(scenario: tuple, result: wrk.Result, ceiling: float) -> tuple:
    name, _, _, connections, goal = scenario
    return name, connections, result, goal, ceiling


def _compare(scenario: tuple, loads: dict, duration: int, rows: list, servers: dict,
             database_pids: tuple[int, ...]) -> wrk.Result:
    """A throughput goal: ROUNDS runs of the ceiling, then the goal's floor and the
    scenario, in turns one first and the other (so that neither always follows the
    other's writes); the round with the median ratio goes into `rows`."""
    floor = FLOORS[scenario[2]]
    seconds = max(1, duration // ROUNDS)
    rounds = []
    for index in range(ROUNDS):
        ceiling = _drive(CEILING, loads, seconds, servers, database_pids)
        pair = (floor, scenario) if index % 2 == 0 else (scenario, floor)
        measured = {each[0]: _drive(each, loads, seconds, servers, database_pids) for each in pair}
        rounds.append((ceiling, measured[floor[0]], measured[scenario[0]]))
    rounds.sort(key=lambda runs: runs[2].requests_per_second / runs[0].requests_per_second)
    ceiling, floor_result, result = rounds[len(rounds) // 2]
    for each, measured in ((CEILING, ceiling), (floor, floor_result), (scenario, result)):
        rows.append(_row(each, measured, ceiling.requests_per_second))
    return ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "mysql"], default="sqlite")
    parser.add_argument("--mysql-driver", choices=mysql.DRIVERS, default=mysql.installed_driver(),
                        help="DBAPI driver for --db mysql (default: mysqldb when installed)")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--warehouses", type=int, default=1, help="the seed spreads the stock over this many")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--only", action="append",
                        help="run only scenarios whose name contains this (repeat it for several)")
    parser.add_argument("--port", type=int, default=8701, help="the service's port; the bare app takes the next one")
    parser.add_argument("--mysql-database", default="inventory_bench",
                        help="for --db mysql: the database, dropped and made afresh (the floor's tables go in it too)")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="inventory-bench-"))
    url = _database(args.db, directory, args.mysql_driver, "bench" if args.db == "sqlite" else args.mysql_database)
    env = service_env(url)
    started = time.perf_counter()
    seeded_at = time.time()
    seed(env, args.products, args.movements, args.warehouses)
    print(f"seeded {args.products} products, {args.movements} movements, {args.warehouses} warehouses "
          f"in {time.perf_counter() - started:.0f}s")
    # On SQLite a file of its own, so that the floor's writes never wait for the service's.
    floor_url = _database(args.db, directory, args.mysql_driver, "bench_floor") if args.db == "sqlite" else url
    prepare_floor(floor_url, args.products + HOT_PRODUCTS)

    servers = {"service": serve("main:app", args.port, env, directory / "app.log")}
    try:
        servers["bare"] = serve("bench.bare_app:app", args.port + 1, {**env, "FLOOR_DATABASE_URL": floor_url},
                                 directory / "bare.log")
        for i in range(HOT_PRODUCTS):
            requests.post(f"{servers['service'].url}/api/products/", timeout=30, json={
                "name": f"压测商品{i}", "sku": f"BENCH-{i}", "price": 9.9, "initial_quantity": 1_000_000})
        loads = workloads(servers["service"].url, args.products, args.movements, seeded_at)
        rows, ceiling, database_pids = [], None, _database_server_pids(args.db)
        for scenario in SCENARIOS:
            if args.only and not any(part in scenario[0] for part in args.only):
                continue
            if scenario[4] and scenario[4][0] == "ratio":
                ceiling = _compare(scenario, loads, args.duration, rows, servers, database_pids)
                continue
            if ceiling is None:
                ceiling = _drive(CEILING, loads, args.duration, servers, database_pids)
                rows.append(_row(CEILING, ceiling, ceiling.requests_per_second))
            rows.append(_row(scenario, _drive(scenario, loads, args.duration, servers, database_pids),
                             ceiling.requests_per_second))
        rss = _worker_rss_mb(servers["service"].process)
    finally:
        for server in servers.values():
            server.process.terminate()
            server.process.wait(timeout=60)

    # The whole ledger is proved by the CLI: a million rows take longer than a request may.
    checked = subprocess.run([sys.executable, "-m", "flask", "--app", "main", "ledger", "verify"], cwd=ROOT,
                             env={**env, "LOG_LEVEL": "ERROR"}, capture_output=True, text=True)
    verify = json.loads(checked.stdout)
    database = args.db if args.db == "sqlite" else f"mysql ({args.mysql_driver})"
    print(f"\n{database}: {args.products:,} products × {args.warehouses} warehouses, {args.movements:,} movements; "
          f"wrk {args.duration}s per row, throughput goals in {ROUNDS} rounds of {max(1, args.duration // ROUNDS)}s "
          "(median shown)")
    if args.db == "mysql":
        print(mysql.buffer_pool_line(url))
    print()
    print("| endpoint | conns | req/s | p50 ms | p99 ms | errors | worker CPU µs/req | database CPU µs/req "
          "| × ceiling | goal | met |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for name, connections, result, goal, ceiling in rows:
        ratio = result.requests_per_second / ceiling
        met = ""
        if goal:
            measure = ratio if goal[0] == "ratio" else result.p99_ms
            met = "yes" if (measure >= goal[1] if goal[0] == "ratio" else measure < goal[1]) and result.errors == 0 else "NO"
        goal_text = "" if not goal else (f"≥ {goal[1]} × ceiling" if goal[0] == "ratio" else f"p99 < {goal[1]} ms")
        print(f"| {name} | {connections} | {result.requests_per_second:,.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} |"
              f" {result.errors} | {result.worker_cpu_us:,.0f} | {_optional(result.database_cpu_us)} | {ratio:.2f} |"
              f" {goal_text} | {met} |")
    print(f"\nworker RSS (largest): {rss:.0f} MB (goal < 150 MB)")
    print(f"ledger after the run: {verify['products_checked']:,} products, {verify['logs_checked']:,} movements, "
          f"{verify['problems_total']} problems")
    (directory / "results.json").write_text(json.dumps(
        {"rows": [{"name": n, "connections": c, **asdict(r), "ceiling": top} for n, c, r, _, top in rows],
         "rss_mb": rss, "verify": verify},
        ensure_ascii=False, indent=2))
    print(f"raw results: {directory / 'results.json'}")


if __name__ == "__main__":
    main()
