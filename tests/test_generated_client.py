"""A typed Python client generated from the live `/openapi.json` by openapi-python-client
with its default settings installs with pip and works: a product created, stock added,
both read back, and a refusal parsed into the shared error schema."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent
# The calls a client's author would write, run in a fresh interpreter that has only the
# installed package (and its dependencies) to go on.
CALLS = textwrap.dedent('''
    import json, sys
    sys.path.insert(0, sys.argv[2])  # where pip installed the package
    from inventory_service_api_client import Client
    from inventory_service_api_client.api.products import products_create_product, products_get_product
    from inventory_service_api_client.api.stock import stock_add_stock, stock_get_stock
    from inventory_service_api_client.models import Error, ProductCreate, StockChange, StockGetStockPoint

    client = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)
    body = ProductCreate(name="扫码枪", sku="GEN-1", price=12.5, barcode="6901234567892", initial_quantity=3)
    created = products_create_product.sync(client=client, body=body).data
    added = stock_add_stock.sync(client=client, body=StockChange(product_id=created.id, quantity=5, reason="采购入库")).data
    product = products_get_product.sync(product_id=created.id, client=client).data
    then = stock_get_stock.sync(product_id=created.id, client=client, point=StockGetStockPoint(as_of_seq=1)).data
    again = products_create_product.sync_detailed(client=client, body=body)
    print(json.dumps({
        "created": [created.name, created.sku, created.barcode, created.stock.quantity],
        "added": [added.stock.quantity, added.log.action, added.log.before_quantity, added.log.after_quantity],
        "read": [product.stock.quantity, product.barcode],
        "as_of_seq_1": then.quantity,
        "duplicate": [int(again.status_code), type(again.parsed).__name__, again.parsed.error.code.value,
                      again.parsed.message],
    }, ensure_ascii=False))
''')


def run(*command, cwd: Path, **environment) -> str:
    """Run a command with the test environment's tools first on PATH (the generator runs ruff)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **environment}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


@pytest.mark.slow
@pytest.mark.workers(2)
def test_a_client_generated_with_default_settings_installs_and_works(live_server, tmp_path):
    document = requests.get(f"{live_server.url}/openapi.json", timeout=20).json()
    (tmp_path / "openapi.json").write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")

    output = run(str(BIN / "openapi-python-client"), "generate", "--path", "openapi.json", cwd=tmp_path)
    assert "Warning" not in output, output  # nothing of the document was skipped
    package = tmp_path / "inventory-service-api-client"  # named from the ASCII info.title
    # Its build backend (poetry-core) comes from requirements-dev.txt: no download.
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
        "--target", str(tmp_path / "site"), str(package), cwd=tmp_path)

    script = tmp_path / "calls.py"
    script.write_text(CALLS, encoding="utf-8")
    # -I: neither the project nor the script's directory is importable, only the package.
    answers = json.loads(run(sys.executable, "-I", str(script), live_server.url, str(tmp_path / "site"), cwd=tmp_path))

    assert answers == {
        "created": ["扫码枪", "GEN-1", "6901234567892", 3],
        "added": [8, "in", 3, 8],
        "read": [8, "6901234567892"],
        "as_of_seq_1": 3,
        "duplicate": [409, "Error", "DUPLICATE", "SKU 已存在"],
    }
