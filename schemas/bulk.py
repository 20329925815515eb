"""Import and export: a spreadsheet row as checked, the import's answer, export queries."""
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.common import Count, Money, QueryBool, QueryId, QueryModel, ResponseModel, StockLevel
from schemas.log import LogFilters
from schemas.product import Barcode, Category, Description, Location, Name, Sku, max_not_below_min

# Each field of a row and the headers that name it (matched without regard to case).
COLUMNS = {
    "sku": ("sku", "商品编码"),
    "name": ("name", "名称", "商品名称"),
    "barcode": ("barcode", "条码"),
    "price": ("price", "价格"),
    "category": ("category", "分类"),
    "description": ("description", "描述"),
    "min_quantity": ("min_quantity", "最低库存"),
    "max_quantity": ("max_quantity", "最高库存"),
    "location": ("location", "库位"),
    "warehouse": ("warehouse", "仓库"),
    "quantity": ("quantity", "数量"),
    "expected_quantity": ("expected_quantity", "账面数量"),
}
# Columns the stock export writes to be read, not imported: an import passes over them.
READ_ONLY_COLUMNS = {"reserved": ("reserved", "预留"), "available": ("available", "可用")}
READ_ONLY_HEADERS = frozenset(alias.lower() for aliases in READ_ONLY_COLUMNS.values() for alias in aliases)
NUMBER_FIELDS = {"price", "min_quantity", "max_quantity", "quantity", "expected_quantity"}


class ImportRow(BaseModel):
    """One data row, its cells already turned into numbers where numbers belong. Only
    the columns the file has are set; the field types are the API's own."""

    model_config = ConfigDict(extra="forbid")

    sku: Sku
    name: Name = None
    barcode: Barcode | None = None
    price: Money = None
    category: Category = None
    description: Description = None
    min_quantity: Count = None
    max_quantity: Count | None = None
    location: Location = None
    warehouse: str | None = None
    quantity: Count | None = None
    expected_quantity: StockLevel | None = None

    _thresholds_in_order = field_validator("max_quantity")(max_not_below_min)


class ImportQuery(QueryModel):
    dry_run: QueryBool = Field(False, description="Check everything, change nothing", examples=[True])


class ImportProblem(ResponseModel):
    row: int = Field(description="As the spreadsheet numbers it: the header is row 1", examples=[3])
    column: str | None = Field(description="The column's header as written in the file", examples=["价格"])
    message: str = Field(examples=["价格 必须是数字"])


class ImportOut(ResponseModel):
    rows: int = Field(description="Data rows read (the header not counted)")
    created: int
    updated: int = Field(description="Rows whose product, stock settings or count changed")
    unchanged: int
    stock_adjusted: int = Field(description="Rows whose count was set by an `adjust` movement")
    errors: list[ImportProblem] = Field(description="Always empty here: a file with errors is a 400")
    dry_run: bool


ExportFormat = Literal["csv", "xlsx"]


class ExportQuery(QueryModel):
    format: ExportFormat = Field("csv", description="`csv` (UTF-8 with BOM) or `xlsx`", examples=["xlsx"])


class StockExportQuery(ExportQuery):
    warehouse_id: QueryId | None = Field(None, description="Only this warehouse's levels",
                                         examples=[1])


class LogExportQuery(ExportQuery, LogFilters):
    """The filters of `GET /api/logs/`, without paging: the whole filtered ledger."""
