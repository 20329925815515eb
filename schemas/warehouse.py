"""Warehouse request and response models, and a product's level in one warehouse."""
from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, StrictBool, model_validator

from schemas.common import HeldOut, PageQuery, RequestBody, ResponseModel, code, optional_text, required_text

WarehouseCode = code()
WarehouseName = required_text(200)
Address = optional_text(255)


class WarehouseCreate(RequestBody):
    code: WarehouseCode
    name: WarehouseName
    address: Address = None
    # True makes the new warehouse the default (the mark moves off the old one).
    is_default: StrictBool = False


class WarehouseUpdate(RequestBody):
    """Only the fields sent change. `is_default: true` moves the default mark here; the
    mark cannot be taken off (some warehouse is always the default): `false` on the
    default is a 409."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    code: WarehouseCode = None
    name: WarehouseName = None
    address: Address = None
    is_default: StrictBool = None

    @model_validator(mode="after")
    def _something_to_change(self):
        if not self.model_fields_set:
            raise ValueError("至少提供一个要修改的字段")
        for field in ("code", "name", "is_default"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} 不能为 null")
        return self


class WarehouseQuery(PageQuery):
    sort: Literal["id", "-id"] = "id"


class WarehouseOut(ResponseModel):
    id: int
    code: str
    name: str
    address: str | None
    is_default: bool
    created_at: datetime
    updated_at: datetime
    total_quantity: int = Field(description="Units of live products held here")
    products: int = Field(description="How many live products hold stock here")


class LevelOut(HeldOut):
    """A product's stock in one warehouse."""

    warehouse_id: int
    warehouse_code: str | None
    min_quantity: int
    max_quantity: int | None
    location: str | None
    is_low: bool
