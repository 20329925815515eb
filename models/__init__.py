"""Table mappings; importing this package registers every model with the metadata."""
from models.api_key import ROLES, ApiKey
from models.console_session import ConsoleSession
from models.idempotency import IdempotencyRecord
from models.movement_daily import MovementDaily
from models.product import Product
from models.product_count import NO_CATEGORY, ProductCount
from models.stock import Stock
from models.stock_log import ACTIONS, GENESIS_HASH, StockLog, chain_hash

__all__ = [
    "ACTIONS", "GENESIS_HASH", "NO_CATEGORY", "ROLES", "ApiKey", "ConsoleSession", "IdempotencyRecord",
    "MovementDaily", "Product", "ProductCount", "Stock", "StockLog", "chain_hash",
]
