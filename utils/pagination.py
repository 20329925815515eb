"""One page of a list, as the services return it and the envelope shows it."""
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int

    def pagination(self) -> dict[str, int]:
        pages = -(-self.total // self.per_page) if self.total else 0
        return {"page": self.page, "per_page": self.per_page, "total": self.total, "pages": pages}
