"""Table mappings; importing this package registers every model with the metadata."""
from models.product import Product
from models.stock import Stock
from models.stock_log import ACTIONS, StockLog

__all__ = ["ACTIONS", "Product", "Stock", "StockLog"]
