"""Would a Redis cache pay for single reads? `python -m bench.cache_probe [--db sqlite|mysql]`

Times, in one process, a product read as the service does it (its prepared read from
the database, shaped for the answer) against what a cached read would do instead (a
GET of the answer's JSON from Redis with redis-py, decoded). Each is run 5 times over
5,000 reads of 1,000 seeded products; the best run's CPU and wall time per read are
printed. Redis at CACHE_PROBE_REDIS_URL (default: the local server); the probe writes
and then deletes only its own keys.
"""
import argparse
import json
import os
import tempfile
import time

from redis import Redis

from bench import mysql, service_env

PRODUCTS = 1_000
READS = 5_000
RUNS = 5
KEY_PREFIX = "inventory-cache-probe:product:"


def _best(read) -> tuple[float, float]:
    """(CPU µs, wall µs) per read in the fastest of RUNS runs."""
    runs = []
    for _ in range(RUNS):
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(READS):
            read(i % PRODUCTS + 1)
        runs.append(((time.process_time() - cpu) / READS * 1e6, (time.perf_counter() - wall) / READS * 1e6))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "mysql"], default="sqlite")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="inventory-cache-probe-")
    url = f"sqlite:///{scratch.name}/probe.db" if args.db == "sqlite" else mysql.fresh_database(
        "inventory_cache_probe", mysql.installed_driver())
    os.environ.update(service_env(url))
    from main import create_app  # reads the environment set above
    from routes.parsing import dump
    from schemas.product import ProductOut
    from services import product_service, seed_service

    app = create_app()
    cache = Redis.from_url(os.environ.get("CACHE_PROBE_REDIS_URL", "redis://127.0.0.1:6379/0"))
    keys = [f"{KEY_PREFIX}{product_id}" for product_id in range(1, PRODUCTS + 1)]
    with app.app_context():
        seed_service.seed(PRODUCTS, 0, 1)
        for product_id in range(1, PRODUCTS + 1):
            answer = dump(ProductOut, product_service.get_product(product_id))
            cache.set(keys[product_id - 1], json.dumps(answer, ensure_ascii=False))

        def from_database(product_id: int):
            return dump(ProductOut, product_service.get_product(product_id))

        def from_cache(product_id: int):
            return json.loads(cache.get(keys[product_id - 1]))

        rows = [("service: prepared read + answer", _best(from_database)), ("Redis GET + JSON decode", _best(from_cache))]
    cache.delete(*keys)
    scratch.cleanup()
    database = args.db if args.db == "sqlite" else f"mysql ({mysql.installed_driver()})"
    print(f"\n{database}: one product read, best of {RUNS} runs of {READS:,}\n")
    print("| read | CPU µs | wall µs |\n| --- | ---: | ---: |")
    for name, (cpu, wall) in rows:
        print(f"| {name} | {cpu:.0f} | {wall:.0f} |")
    (_, (service_cpu, _)), (_, (cache_cpu, _)) = rows
    print(f"\na cached read would take {cache_cpu / service_cpu:.0%} of the CPU the service's read takes in the worker")


if __name__ == "__main__":
    main()
