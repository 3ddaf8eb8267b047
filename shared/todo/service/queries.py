"""What a list request asks for, independent of HTTP and SQL."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..domain.task import Priority, Status

SortField = Literal["due_at", "priority", "created_at", "updated_at", "title", "relevance"]
SORT_FIELDS: tuple[SortField, ...] = ("due_at", "priority", "created_at", "updated_at", "title")
DEFAULT_SORT = "due_at,-priority"


@dataclass(frozen=True)
class SortKey:
    field: SortField
    descending: bool = False

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field


def parse_sort(text: str) -> tuple[SortKey, ...]:
    keys: list[SortKey] = []
    for raw in text.split(","):
        item = raw.strip()
        name = item.removeprefix("-")
        if name not in SORT_FIELDS:
            raise ValueError(f"unknown sort field {name!r}; use {', '.join(SORT_FIELDS)} with an optional '-'")
        if any(k.field == name for k in keys):
            raise ValueError(f"sort field {name!r} is given twice")
        keys.append(SortKey(name, item.startswith("-")))
    return tuple(keys)


@dataclass(frozen=True)
class TaskQuery:
    user_id: str
    now: datetime
    q: str | None = None
    statuses: tuple[Status, ...] = (Status.OPEN,)  # empty: every status
    priorities: tuple[Priority, ...] = ()
    tags: tuple[str, ...] = ()
    tag_mode: Literal["all", "any"] = "all"
    due_before: datetime | None = None
    due_after: datetime | None = None
    overdue: bool = False
    sort: tuple[SortKey, ...] = field(default_factory=lambda: parse_sort(DEFAULT_SORT))
    limit: int = 50
    cursor: str | None = None

    def filter_fingerprint(self) -> str:
        """Everything but the cursor and limit: a cursor is valid only for the query that made it."""
        return "|".join(
            [
                self.q or "",
                ",".join(s.value for s in self.statuses),
                ",".join(str(int(p)) for p in self.priorities),
                ",".join(self.tags),
                self.tag_mode,
                self.due_before.isoformat() if self.due_before else "",
                self.due_after.isoformat() if self.due_after else "",
                "overdue" if self.overdue else "",
                ",".join(map(str, self.sort)),
            ]
        )


class InvalidCursor(ValueError):
    """The cursor is not one this server issued for this query."""


def encode_cursor(payload: dict[str, Any]) -> str:
    """An opaque page token: compact JSON in unpadded base64url."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    """The payload of a token from :func:`encode_cursor`; :class:`InvalidCursor` for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("the cursor is malformed") from exc
    if not isinstance(data, dict):
        raise InvalidCursor("the cursor is malformed")
    return data
