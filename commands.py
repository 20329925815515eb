"""Operator commands: `flask --app main ledger verify`, `… products recount`,
`… idempotency prune`, `… openapi`, `… seed`, `… keys create|list|revoke`, `… webhooks run`,
`… import products FILE`, `… export products|stock|logs -o FILE`, `… reservations expire`."""
import getpass
import json
import signal
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from pydantic import ValidationError

from models import ACTIONS, ROLES
from openapi_spec import build_document
from schemas.bulk import LogExportQuery, StockExportQuery
from schemas.common import MAX_ID
from services import (
    api_key_service,
    export_service,
    idempotency_service,
    import_service,
    ledger_service,
    product_service,
    reservation_service,
    seed_service,
)
from services.spreadsheet import csv_stream, file_chunks, xlsx_file
from utils.exceptions import AppError
from utils.validation import field_details

ledger_cli = AppGroup("ledger", help="The stock movement ledger.")
idempotency_cli = AppGroup("idempotency", help="Stored Idempotency-Key responses.")
keys_cli = AppGroup("keys", help="API keys (access control).")
products_cli = AppGroup("products", help="The catalogue.")
webhooks_cli = AppGroup("webhooks", help="Webhook deliveries.")
import_cli = AppGroup("import", help="Spreadsheets in (docs/import-export.md).")
export_cli = AppGroup("export", help="Spreadsheets out (docs/import-export.md).")
reservations_cli = AppGroup("reservations", help="Units held for orders.")


@ledger_cli.command("verify")
@click.option("--product-id", type=click.IntRange(1, MAX_ID), default=None, help="Check one product only.")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
def verify_command(product_id: int | None, quiet: bool) -> None:
    """Recompute every chain in one walk; exit 1 when any problem is found, 2 on bad usage.
    Progress goes to stderr, the report to stdout."""
    started = time.monotonic()
    try:
        report = ledger_service.verify(product_id, progress=None if quiet else _progress_printer(started))
    except AppError as exc:
        raise click.UsageError(f"{exc.message} {json.dumps(exc.details, ensure_ascii=False)}") from None
    if not quiet:
        _echo_progress(report["products_checked"], report["logs_checked"], time.monotonic() - started)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    sys.exit(1 if report["problems"] else 0)


def _echo_progress(products: int, logs: int, seconds: float) -> None:
    click.echo(f"verified {products} products, {logs} movements, {seconds:.1f} s", err=True)


def _progress_printer(started: float, every_seconds: float = 2.0):
    """A progress callback that writes a line to stderr at most every few seconds."""
    shown = started

    def show(products: int, logs: int) -> None:
        nonlocal shown
        now = time.monotonic()
        if now - shown >= every_seconds:
            shown = now
            _echo_progress(products, logs, now - started)

    return show


@products_cli.command("recount")
def recount_command() -> None:
    """Rebuild the live-product counts per category from the products, and the live-level
    counts per warehouse from the levels: the categories' on stdout, the warehouses' on stderr."""
    categories, warehouses = product_service.recount()
    click.echo(json.dumps(categories, ensure_ascii=False))
    click.echo(f"live levels per warehouse: {json.dumps(warehouses)}", err=True)


@idempotency_cli.command("prune")
def prune_command() -> None:
    """Delete stored responses older than IDEMPOTENCY_TTL_HOURS."""
    click.echo(f"pruned {idempotency_service.prune()} idempotency records")


@keys_cli.command("create")
@click.option("--name", required=True, help="Who uses the key; logged as the operator of its changes.")
@click.option("--role", type=click.Choice(ROLES), required=True)
def keys_create_command(name: str, role: str) -> None:
    """Issue a key and print it once: only its hash is kept, it cannot be shown again."""
    try:
        key, token = api_key_service.create_key(name, role)
    except AppError as exc:
        raise click.UsageError(f"{exc.message} {json.dumps(exc.details, ensure_ascii=False)}") from None
    click.echo(f"created key {key.id} ({key.prefix}…) for {key.name!r}, role {key.role}")
    click.echo("store it now; it is not shown again:")
    click.echo(token)


@keys_cli.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
def keys_list_command(include_revoked: bool) -> None:
    """Keys by id, with their non-secret prefix; never the keys themselves."""
    for key in api_key_service.list_keys(include_revoked):
        revoked = f"  revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else ""
        click.echo(f"{key.id}\t{key.prefix}…\t{key.role}\t{key.name}\tcreated {key.created_at:%Y-%m-%dT%H:%M:%SZ}{revoked}")


@keys_cli.command("revoke")
@click.argument("key_id", type=click.IntRange(1, MAX_ID))
def keys_revoke_command(key_id: int) -> None:
    """Revoke a key by id; requests made with it are refused from now on."""
    try:
        key = api_key_service.revoke_key(key_id)
    except AppError as exc:
        raise click.UsageError(exc.message) from None
    click.echo(f"revoked key {key.id} ({key.prefix}…) of {key.name!r}")


@webhooks_cli.command("run")
def webhooks_run_command() -> None:
    """Deliver webhooks until SIGTERM or Ctrl-C; several may run at once (deploy/systemd)."""
    from services.webhook_worker import DeliveryWorker

    worker = DeliveryWorker(current_app._get_current_object())
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    click.echo("webhook worker running", err=True)
    worker.run()


@click.command("openapi")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="openapi.json", show_default=True)
@with_appcontext
def openapi_command(output: str) -> None:
    """Write the OpenAPI 3.1 document to a file ("-" for stdout)."""
    text = json.dumps(build_document(current_app), ensure_ascii=False, indent=2)
    if output == "-":
        click.echo(text)
    else:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        click.echo(f"wrote {output}")


@click.command("seed")
@click.option("--products", type=click.IntRange(1, 10_000_000), default=100, show_default=True)
@click.option("--movements", type=click.IntRange(0, 100_000_000), default=1000, show_default=True)
@click.option("--random-seed", type=int, default=None,
              help="Same seed, same names, prices, counts and movements (SKUs and transfer ids are fresh; times count "
                   "back from now).")
@click.option("--warehouses", type=click.IntRange(1, 99), default=1, show_default=True,
              help="Spread the stock over the default warehouse and WH-02, WH-03 … (made when missing), with transfers.")
@with_appcontext
def seed_command(products: int, movements: int, random_seed: int | None, warehouses: int) -> None:
    """Fill the database with demo products and a consistent movement history."""
    started = time.perf_counter()
    summary = seed_service.seed(products, movements, random_seed, warehouses)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    click.echo(json.dumps(summary, ensure_ascii=False))


class _StageBars:
    """One progress bar per stage of an import (checking the rows, counting stock)."""

    def __init__(self):
        self.bar, self.stage = None, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.bar, self.stage = click.progressbar(length=total, label=stage, file=sys.stderr), stage
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@import_cli.command("products")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check everything, change nothing.")
@click.option("--operator", default=None, help="Logged as the operator of the stock counts (default: your login).")
def import_products_command(file, dry_run: bool, operator: str | None) -> None:
    """Import a products CSV/XLSX of any number of rows; exit 1 when it has errors."""
    bars = _StageBars()
    started = time.perf_counter()
    try:
        report = import_service.import_products(file.read(), dry_run=dry_run, actor=operator or getpass.getuser(),
                                                cli=True, progress=bars)
    except AppError as exc:
        bars.close()
        click.echo(json.dumps({"message": exc.message, **exc.details}, ensure_ascii=False, indent=2))
        sys.exit(1)
    bars.close()
    summary = report.summary()
    summary["seconds"] = round(time.perf_counter() - started, 1)
    click.echo(json.dumps(summary, ensure_ascii=False))


def _export(output, rows, count: int, header, file_format: str, title: str) -> None:
    with click.progressbar(rows, length=count, label=f"exporting {title}", file=sys.stderr) as bar:
        chunks = file_chunks(xlsx_file(list(header), bar, title)) if file_format == "xlsx" else \
            csv_stream(list(header), bar)
        for chunk in chunks:
            output.write(chunk)
    click.echo(f"wrote {count} rows to {output.name}")


FORMAT_OPTION = click.option("--format", "file_format", type=click.Choice(["csv", "xlsx"]), default=None,
                             help="Default: from the file's extension, else csv.")
OUTPUT_OPTION = click.option("--output", "-o", type=click.File("wb"), required=True)


def _format_of(output, file_format: str | None) -> str:
    return file_format or ("xlsx" if str(output.name).lower().endswith(".xlsx") else "csv")


@export_cli.command("products")
@OUTPUT_OPTION
@FORMAT_OPTION
def export_products_command(output, file_format: str | None) -> None:
    """Live products, as the import reads them."""
    _export(output, export_service.product_rows(), export_service.row_count(export_service.PRODUCTS),
            export_service.PRODUCT_COLUMNS, _format_of(output, file_format), "products")


@export_cli.command("stock")
@OUTPUT_OPTION
@FORMAT_OPTION
def export_stock_command(output, file_format: str | None) -> None:
    """Stock levels with `expected_quantity`: a stocktake sheet."""
    _export(output, export_service.stock_rows(StockExportQuery()), export_service.row_count(export_service.LEVELS),
            export_service.STOCK_COLUMNS, _format_of(output, file_format), "stock")


@export_cli.command("logs")
@OUTPUT_OPTION
@FORMAT_OPTION
@click.option("--product-id", type=click.IntRange(1, MAX_ID), default=None)
@click.option("--action", type=click.Choice(list(ACTIONS)), default=None)
@click.option("--operator", default=None)
@click.option("--start-date", default=None, help="A date or ISO 8601 datetime (inclusive).")
@click.option("--end-date", default=None, help="A date (the whole day) or ISO 8601 datetime (inclusive).")
def export_logs_command(output, file_format: str | None, **filters) -> None:
    """The movement ledger, oldest first, with the filters of GET /api/logs/."""
    try:
        query = LogExportQuery.model_validate({k: v for k, v in filters.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(json.dumps(field_details(exc), ensure_ascii=False)) from None
    _export(output, export_service.log_rows(query), export_service.row_count(export_service.movements(query)),
            export_service.LOG_COLUMNS, _format_of(output, file_format), "logs")


def register_commands(app: Flask) -> None:
    app.cli.add_command(openapi_command)
    app.cli.add_command(seed_command)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(idempotency_cli)
    app.cli.add_command(products_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(webhooks_cli)
    app.cli.add_command(import_cli)
    app.cli.add_command(export_cli)
    app.cli.add_command(reservations_cli)


@reservations_cli.command("expire")
def expire_reservations_command() -> None:
    """Mark the reservations past their time `expired` (they already hold nothing); safe while traffic flows."""
    click.echo(f"expired {reservation_service.expire_all()} reservations")
