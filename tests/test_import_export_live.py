"""Imports and exports on the production stack: a 50,000-row file in one request, files
past the JSON body limit through the project's Nginx site, and an export streamed by a
worker while it reads."""
import csv
import io
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import NGINX_MISSING, NginxProxy

ROWS = 50_000
GUNICORN_TIMEOUT = 30  # seconds: the project's default worker timeout


def catalogue_csv(rows: int) -> bytes:
    """A Chinese catalogue with a stocktake count in every row: the heaviest kind of import."""
    rng = random.Random(20261124)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["商品编码", "名称", "价格", "分类", "描述", "最低库存", "库位", "数量"])
    for i in range(rows):
        writer.writerow([f"BULK-{i:06d}", f"批量商品{i}号", f"{rng.randint(100, 99999) / 100:.2f}", f"分类{i % 50}",
                         f"描述{i}", i % 10, f"A区-{i % 100:02d}", rng.randint(1, 500)])
    return buffer.getvalue().encode("utf-8-sig")


@pytest.mark.slow
@pytest.mark.workers(1)
def test_fifty_thousand_rows_import_in_one_request_the_worker_reporting_progress(live_server):
    """On a quiet machine the import takes about half of gunicorn's timeout (SQLite and
    MariaDB: docs/import-export.md); on a busy one it may take longer, and the worker,
    reporting each step to gunicorn's master, is not killed halfway."""
    body = catalogue_csv(ROWS)
    started = time.monotonic()
    response = requests.post(f"{live_server.url}/api/import/products", data=body,
                             headers={"Content-Type": "text/csv"}, timeout=GUNICORN_TIMEOUT + 15)
    seconds = time.monotonic() - started
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["data"]["created"] == ROWS and response.json()["data"]["stock_adjusted"] == ROWS
    print(f"\n{ROWS} rows imported in {seconds:.1f} s: {ROWS / seconds:,.0f} rows/s")
    again = requests.post(f"{live_server.url}/api/import/products?dry_run=true", data=body,
                          headers={"Content-Type": "text/csv"}, timeout=GUNICORN_TIMEOUT + 15)
    assert again.status_code == 200 and again.json()["data"]["unchanged"] == ROWS


@pytest.mark.skipif(NGINX_MISSING, reason="needs nginx (apt-get install nginx)")
@pytest.mark.workers(1)
def test_an_import_past_the_json_limit_passes_the_nginx_site(live_server):
    body = catalogue_csv(30_000)
    assert len(body) > 2 * 1024 * 1024  # past the site's limit for every other request
    # Nginx keeps a large body in a file of its workers' own user: a directory they can enter.
    directory = Path(tempfile.mkdtemp(prefix="nginx-import-"))
    os.chmod(directory, 0o755)
    proxy = NginxProxy([live_server, live_server], directory)
    try:
        response = requests.post(f"{proxy.url}/api/import/products?dry_run=true", files={"file": ("big.csv", body)},
                                 timeout=GUNICORN_TIMEOUT + 15)
        refused = requests.post(f"{proxy.url}/api/stock/add", data=body, timeout=GUNICORN_TIMEOUT,
                                headers={"Content-Type": "application/json"})
    finally:
        proxy.stop()
        shutil.rmtree(directory, ignore_errors=True)
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["data"]["created"] == 30_000
    assert refused.status_code == 413


@pytest.mark.workers(1)
def test_an_export_is_streamed_as_it_is_read(live_server):
    for i in range(3):
        requests.post(f"{live_server.url}/api/products/", timeout=30,
                      json={"sku": f"S-{i}", "name": f"流式{i}", "price": 1, "initial_quantity": i + 1})
    with requests.get(f"{live_server.url}/api/export/logs", stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert "Content-Length" not in response.headers  # sent as it is written
        body = response.raw.read()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row[3] for row in rows[1:]] == ["S-0", "S-1", "S-2"]
