"""Table mappings; importing this package registers every model with the metadata."""
from models.api_key import ROLES, ApiKey
from models.console_session import ConsoleSession
from models.event import EVENT_TYPES, Event, EventSequencer
from models.idempotency import IdempotencyRecord
from models.level_count import LevelCount
from models.movement_daily import MovementDaily
from models.product import Product
from models.product_count import NO_CATEGORY, ProductCount
from models.reservation import STATUSES, Reservation, utc_now
from models.shards import shard_of
from models.stock import Stock
from models.stock_level import StockLevel
from models.stock_log import ACTIONS, GENESIS_HASH, HASH_VERSION, LEVEL_SIGN, TRANSFER_ACTIONS, StockLog, chain_hash
from models.warehouse import DEFAULT_WAREHOUSE, Warehouse
from models.webhook import DELIVERY_STATUSES, Webhook, WebhookDelivery, WebhookWorker

__all__ = [
    "ACTIONS", "DEFAULT_WAREHOUSE", "DELIVERY_STATUSES", "EVENT_TYPES", "GENESIS_HASH", "HASH_VERSION", "LEVEL_SIGN",
    "NO_CATEGORY", "ROLES", "TRANSFER_ACTIONS", "ApiKey", "ConsoleSession", "Event", "EventSequencer",
    "IdempotencyRecord", "LevelCount", "MovementDaily", "Product", "ProductCount", "Reservation", "STATUSES", "Stock",
    "StockLevel", "StockLog", "Warehouse", "Webhook", "WebhookDelivery", "WebhookWorker", "chain_hash", "shard_of", "utc_now",
]
