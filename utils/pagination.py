"""One page of a list, as the services return it and the envelope shows it."""
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    items: list[Any]
    page: int
    per_page: int
    total: int
    # Cursors of the last and first item (services/pagination.py): pass one back as
    # `after` for the next page or as `before` for the previous; None where the list
    # ends (or the page is empty).
    next_after: str | None = None
    prev_before: str | None = None
    # A ledger list (newest first by id) also names the last item's id while the page is full.
    keyset: bool = False

    def pagination(self) -> dict[str, Any]:
        pages = -(-self.total // self.per_page) if self.total else 0
        answer = {"page": self.page, "per_page": self.per_page, "total": self.total, "pages": pages,
                  "next_after": self.next_after, "prev_before": self.prev_before}
        if self.keyset:
            answer["next_before_id"] = self.items[-1].id if len(self.items) == self.per_page else None
        return answer
