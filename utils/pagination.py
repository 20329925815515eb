"""One page of a list, as the services return it and the envelope shows it."""
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int
    # A ledger list (newest first by id) also says where the next page starts:
    # the last item's id while the page is full, else None.
    keyset: bool = False

    def pagination(self) -> dict[str, int | None]:
        pages = -(-self.total // self.per_page) if self.total else 0
        answer = {"page": self.page, "per_page": self.per_page, "total": self.total, "pages": pages}
        if self.keyset:
            answer["next_before_id"] = self.items[-1].id if len(self.items) == self.per_page else None
        return answer
