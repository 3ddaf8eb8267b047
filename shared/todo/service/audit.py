"""Use cases of the audit trail: record an event once, read the trail, verify its chain."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from ..domain import audit
from ..domain.audit import AuditEntry, ChainHead, Occurrence, Verification
from ..domain.errors import TaskNotFound
from .queries import InvalidCursor, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

CONSUMER = "audit-sink"
READER_ROLES = ("auditor", "admin")  # who may read and verify the whole trail (any one of them)
MAX_LIMIT = 200


@dataclass(frozen=True)
class AuditQuery:
    """Entries in ``seq`` order, after the one the cursor names; ``since``/``until`` bound ``occurred_at``."""

    actor: str | None = None
    task_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    cursor: str | None = None


class AuditStore(Protocol):
    def claim(self, consumer: str, source: str, event_id: str, now: datetime) -> bool: ...
    def lock_head(self, now: datetime) -> ChainHead: ...
    def head(self) -> ChainHead: ...
    def last_task_state(self, task_id: int) -> AuditEntry | None: ...
    def append(self, entry: AuditEntry) -> None: ...
    def entries(self) -> Iterator[AuditEntry]: ...
    def find(self, query: AuditQuery, after_seq: int) -> list[AuditEntry]: ...
    def has_task(self, actor: str, task_id: int) -> bool: ...


class AuditUnitOfWork(Protocol):
    @property
    def audit(self) -> AuditStore: ...

    def consistent(self) -> Self:
        """Make the next transaction read one snapshot of the whole trail."""
        ...

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def commit(self) -> None: ...


def record(uow: AuditUnitOfWork, occurrence: Occurrence, now: datetime) -> AuditEntry | None:
    """Append one entry for the occurrence; ``None`` when its event was recorded before.

    The claim, the chain head's lock and the append share one transaction: a redelivery waits for
    the first delivery and then finds its claim, and concurrent appenders queue on the head.
    """
    with uow:
        if not uow.audit.claim(CONSUMER, occurrence.source, occurrence.event_id, now):
            log.info("audit: event already recorded", extra={"ce_id": occurrence.event_id,
                                                             "ce_source": occurrence.source})
            return None
        head = uow.audit.lock_head(now)
        last = uow.audit.last_task_state(occurrence.task_id) if occurrence.is_task_change else None
        entry = audit.append(head, occurrence, audit.known_state(last), now)
        uow.audit.append(entry)
        uow.commit()
    log.info("audit: entry recorded", extra={"ce_id": occurrence.event_id, "task_id": occurrence.task_id,
                                             "seq": entry.seq, "action": entry.action})
    return entry


def find_entries(uow: AuditUnitOfWork, query: AuditQuery) -> tuple[list[AuditEntry], str | None]:
    with uow:
        return _page(uow.audit, query)


def task_history(uow: AuditUnitOfWork, user_id: str, task_id: int, limit: int = MAX_LIMIT,
                 cursor: str | None = None) -> tuple[list[AuditEntry], str | None]:
    """The trail of one of the caller's tasks, deleted or not; someone else's task is not found."""
    with uow:
        if not uow.audit.has_task(user_id, task_id):
            raise TaskNotFound(task_id)
        return _page(uow.audit, AuditQuery(actor=user_id, task_id=task_id, limit=limit, cursor=cursor))


def verify(uow: AuditUnitOfWork) -> Verification:
    with uow.consistent():
        return audit.verify(uow.audit.entries(), uow.audit.head())


def _page(store: AuditStore, query: AuditQuery) -> tuple[list[AuditEntry], str | None]:
    after = _after_seq(query.cursor) if query.cursor is not None else 0
    rows = store.find(query, after)
    items = rows[: query.limit]
    return items, encode_cursor({"after": items[-1].seq}) if len(rows) > query.limit else None


def _after_seq(cursor: str) -> int:
    after = decode_cursor(cursor).get("after")
    if type(after) is not int or after < 0:
        raise InvalidCursor("the cursor is malformed")
    return after
