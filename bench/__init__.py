"""Benchmarks of the service: `python -m bench` (throughput and latency under wrk),
`python -m bench.instructions` (instructions per request), `python -m bench.cache_probe`,
`python -m bench.row_locks` (lock waits of stock changes on one MariaDB server)."""
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def service_env(url: str) -> dict:
    """The service as deployed, minus the guards the tables leave out (docs/performance.md: "How it is measured")."""
    return {**os.environ, "APP_ENV": "production", "DATABASE_URL": url, "SECRET_KEY": "bench-only-secret",
            "AUTH_REQUIRED": "false", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}


def seed(env: dict, products: int, movements: int, warehouses: int = 1) -> None:
    """Fill the database in `env` through the service's own seed command."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "main", "seed", "--products", str(products),
                    "--movements", str(movements), "--warehouses", str(warehouses), "--random-seed", "1"],
                   cwd=ROOT, env=env, check=True)


@dataclass
class Server:
    process: subprocess.Popen
    url: str


def serve(module: str, port: int, env: dict, log: Path) -> Server:
    """gunicorn serving `module` with the project's config, once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", module],
        cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    probe = "/ping" if "bare" in module else "/health"
    for _ in range(300):
        try:
            if requests.get(f"{url}{probe}", timeout=5).status_code == 200:
                return Server(process, url)
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(log.read_text()[-3000:])
