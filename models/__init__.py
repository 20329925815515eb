"""Table mappings; importing this package registers every model with the metadata."""
from models.api_key import ROLES, ApiKey
from models.console_session import ConsoleSession
from models.event import EVENT_TYPES, Event, EventSequencer
from models.idempotency import IdempotencyRecord
from models.movement_daily import MovementDaily
from models.product import Product
from models.product_count import NO_CATEGORY, ProductCount
from models.shards import shard_of
from models.stock import Stock
from models.stock_log import ACTIONS, GENESIS_HASH, StockLog, chain_hash
from models.webhook import DELIVERY_STATUSES, Webhook, WebhookDelivery, WebhookWorker

__all__ = [
    "ACTIONS", "DELIVERY_STATUSES", "EVENT_TYPES", "GENESIS_HASH", "NO_CATEGORY", "ROLES", "ApiKey", "ConsoleSession",
    "Event", "EventSequencer", "IdempotencyRecord", "MovementDaily", "Product", "ProductCount", "Stock", "StockLog",
    "Webhook", "WebhookDelivery", "WebhookWorker", "chain_hash", "shard_of",
]
