"""The delivery worker behind `flask --app main webhooks run`: a process of its own, so
web workers never call out. It sequences the feed, fans events out to deliveries,
claims due ones and sends them from a thread pool, so a slow or dead receiver ties up
at most WEBHOOK_PER_RECEIVER threads and never the others."""
import logging
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from db import db
from services import webhook_sender, webhook_service, webhook_signing
from services.transaction import safe_rollback

log = logging.getLogger("inventory.webhooks")
HEARTBEAT_EVERY = 5.0  # seconds between heartbeats written (inventory_webhook_worker_seen_seconds)


class DeliveryWorker:
    def __init__(self, app: Flask):
        self.app = app
        self.threads = app.config["WEBHOOK_WORKER_THREADS"]
        self.per_webhook = app.config["WEBHOOK_PER_RECEIVER"]
        self.stopping = threading.Event()
        self.busy: Counter[int] = Counter()  # sends in flight per webhook
        self.lock = threading.Lock()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.last_heartbeat = 0.0

    def run(self) -> None:
        """Until `stop()`: one round, then a pause of WEBHOOK_POLL_INTERVAL when it found nothing to send."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="webhook") as pool:
            while not self.stopping.is_set():
                try:
                    claimed = self.round()
                except Exception:  # noqa: BLE001 - a database outage: log, wait, go on
                    log.exception("webhook round failed")
                    claimed = []
                for delivery in claimed:
                    pool.submit(self.send, delivery)
                if not claimed:
                    self.stopping.wait(self.app.config["WEBHOOK_POLL_INTERVAL"])
            log.info("webhook worker stopping: waiting for sends in flight")

    def round(self) -> list[webhook_service.Claimed]:
        with self.app.app_context():
            try:
                webhook_service.fan_out()
                with self.lock:
                    free = self.threads - sum(self.busy.values())
                    busy = dict(self.busy)
                claimed = webhook_service.claim(free, busy, self.per_webhook) if free > 0 else []
                with self.lock:
                    self.busy.update(delivery.webhook_id for delivery in claimed)
                if time.monotonic() - self.last_heartbeat >= HEARTBEAT_EVERY:
                    webhook_service.worker_seen(self.name)
                    self.last_heartbeat = time.monotonic()
                return claimed
            finally:
                safe_rollback()
                db.session.remove()

    def send(self, delivery: webhook_service.Claimed) -> None:
        """Sign, POST, and record the outcome (in a thread of the pool)."""
        try:
            config = self.app.config
            timestamp = int(time.time())
            headers = {
                "X-Inventory-Event": delivery.event_type,
                "X-Inventory-Delivery": delivery.uid,
                "X-Inventory-Timestamp": str(timestamp),
                "X-Inventory-Signature": webhook_signing.signature_header(
                    delivery.secrets, timestamp, delivery.body),
            }
            outcome = webhook_sender.post(delivery.url, delivery.body, headers, config["WEBHOOK_TIMEOUT"],
                                          config["WEBHOOK_BLOCK_PRIVATE"])
            log.info("delivery %s to webhook %s: %s", delivery.uid, delivery.webhook_id,
                     "delivered" if outcome.delivered else outcome.error)
            with self.app.app_context():
                try:
                    webhook_service.record_outcome(delivery, outcome)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the lease runs out and the delivery is tried again
            log.exception("delivery %s: recording the outcome failed", delivery.uid)
        finally:
            with self.lock:
                self.busy[delivery.webhook_id] -= 1

    def stop(self, *_) -> None:
        self.stopping.set()
