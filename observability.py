"""What operators watch: one JSON log line per request and Prometheus metrics that
add up across gunicorn workers (prometheus_client's multiprocess mode)."""
import functools
import logging
import os
import re
import sys

import click
from flask import Flask, Response, g, request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from pythonjsonlogger.json import JsonFormatter
from sqlalchemy.exc import SQLAlchemyError

from utils.request_id import request_id_of, seconds_since_start

REQUESTS = Counter(
    "inventory_http_requests_total", "HTTP requests answered.", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "inventory_http_request_duration_seconds", "Time to answer a request.", ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
access_log = logging.getLogger("inventory.access")
# Label values: any other method a client sends is counted as OTHER, so made-up
# methods cannot grow the metrics without bound.
KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
# Terminal colours (`ESC[…m`) that werkzeug's development server puts around status codes.
TERMINAL_STYLE = re.compile(r"\x1b\[[0-9;]*m")


def _without_terminal_styles(record: logging.LogRecord) -> bool:
    """A log line is read by programs, not a terminal: the message without colour codes."""
    if record.name == "werkzeug":
        record.msg, record.args = TERMINAL_STYLE.sub("", record.getMessage()), None
    return True


def configure_logging(level: str, json_lines: bool) -> None:
    """Everything the app logs goes to stdout, as JSON lines unless asked otherwise;
    under a `flask` command, to stderr, so that the command's own output on stdout (a
    new key, `ledger verify`'s report) can be piped on its own."""
    handler = logging.StreamHandler(sys.stderr if click.get_current_context(silent=True) else sys.stdout)
    if json_lines:
        handler.setFormatter(JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
            json_ensure_ascii=False,
        ))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.set_name("inventory")
    handler.addFilter(_without_terminal_styles)
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == "inventory"]:
        root.removeHandler(previous)  # a second app in one process replaces, not doubles
    root.addHandler(handler)
    root.setLevel(level.upper())  # `info` as gunicorn spells it works as well as `INFO`


def _metrics_registry():
    """Under gunicorn (PROMETHEUS_MULTIPROC_DIR set) the sum over every worker's files."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


@functools.cache
def _series(method: str, endpoint: str, status: int) -> tuple[Counter, Histogram]:
    """The labelled counter and histogram of one kind of answer, looked up once per
    worker instead of on every request."""
    return REQUESTS.labels(method, endpoint, str(status)), LATENCY.labels(method, endpoint)


def register_observability(app: Flask) -> None:
    @app.after_request
    def _record(response: Response) -> Response:
        # One context lookup, not one per field: a read through the proxy costs ~1 µs.
        current = request._get_current_object()
        duration = seconds_since_start(current)
        endpoint = current.url_rule.rule if current.url_rule else "unmatched"
        method = current.method if current.method in KNOWN_METHODS else "OTHER"
        answered, latency = _series(method, endpoint, response.status_code)
        answered.inc()
        latency.observe(duration)
        if access_log.isEnabledFor(logging.INFO):
            access_log.info("request", extra={
                "method": current.method,
                "path": current.path,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 2),
                "request_id": request_id_of(current),
                "remote_addr": current.remote_addr,
                "user": g.get("api_key_name"),
            })
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        scrape = generate_latest(_metrics_registry()) + generate_latest(_webhook_registry())
        return Response(scrape, content_type=CONTENT_TYPE_LATEST)


class WebhookBacklog:
    """The delivery worker's health and backlog, read from the database at each scrape
    (the worker is another process): left out while the database does not answer."""

    def collect(self):
        from services.webhook_service import backlog

        try:
            state = backlog()
        except SQLAlchemyError:
            return
        deliveries = GaugeMetricFamily("inventory_webhook_deliveries", "Webhook deliveries not delivered.",
                                       labels=["status"])
        for status in ("pending", "failed"):
            deliveries.add_metric([status], state[status])
        yield deliveries
        yield GaugeMetricFamily("inventory_webhook_oldest_pending_seconds", "Age of the oldest pending delivery.",
                                value=state["oldest_pending_seconds"])
        if state["worker_seen_seconds"] is not None:
            yield GaugeMetricFamily("inventory_webhook_worker_seen_seconds",
                                    "Seconds since a webhook worker last finished a round.",
                                    value=state["worker_seen_seconds"])


def _webhook_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WebhookBacklog())
    return registry
