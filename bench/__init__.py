"""Benchmarks of the service: `python -m bench` (throughput and latency under wrk),
`python -m bench.instructions` (instructions per request), `python -m bench.cache_probe`."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def service_env(url: str) -> dict:
    """The service as deployed, minus the guards the tables leave out (docs/performance.md: "How it is measured")."""
    return {**os.environ, "APP_ENV": "production", "DATABASE_URL": url, "SECRET_KEY": "bench-only-secret",
            "AUTH_REQUIRED": "false", "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING"}


def seed(env: dict, products: int, movements: int) -> None:
    """Fill the database in `env` through the service's own seed command."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "main", "seed", "--products", str(products),
                    "--movements", str(movements), "--random-seed", "1"], cwd=ROOT, env=env, check=True)
