"""Use cases of the audit trail: record an event once, read the trail, verify its chain."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from .. import metrics
from ..domain import audit
from ..domain.audit import AuditEntry, ChainHead, Occurrence, Unreadable, Verification
from ..domain.errors import TaskNotFound
from ..limits import int64_problem
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
    def claim_many(self, consumer: str, events: Iterable[tuple[str, str]],
                   now: datetime) -> set[tuple[str, str]]: ...
    def lock_head(self, now: datetime) -> ChainHead: ...
    def head(self) -> ChainHead: ...
    def last_task_state(self, task_id: int) -> AuditEntry | None: ...
    def append(self, entries: Sequence[AuditEntry]) -> None: ...
    def entries(self) -> Iterator[AuditEntry | Unreadable]: ...
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
    """Append one entry for the occurrence; ``None`` when its event was recorded before."""
    return record_many(uow, [occurrence], now)[0]


def record_many(uow: AuditUnitOfWork, occurrences: Sequence[Occurrence], now: datetime) -> list[AuditEntry | None]:
    """Append an entry per occurrence, in order, in one transaction; ``None`` for an event recorded
    before (or earlier in the same batch).

    The claims, the chain head's lock and the appends share the transaction: a redelivery waits for
    the first delivery and then finds its claim, and concurrent appenders queue on the head. A batch
    pays for the lock and the head's update once, which is what lets one chain keep up with Kafka.
    """
    recorded: list[AuditEntry | None] = []
    with uow:
        fresh = uow.audit.claim_many(CONSUMER, [(o.source, o.event_id) for o in occurrences], now)
        head = uow.audit.lock_head(now) if fresh else ChainHead()
        last_states: dict[int, AuditEntry | None] = {}
        for occurrence in occurrences:
            key = (occurrence.source, occurrence.event_id)
            if key not in fresh:
                log.info("audit: event already recorded", extra={"ce_id": occurrence.event_id,
                                                                 "ce_source": occurrence.source})
                recorded.append(None)
                continue
            fresh.discard(key)  # the same event twice in one batch: the second is a duplicate
            last = None
            if occurrence.is_task_change:
                if occurrence.task_id not in last_states:
                    last_states[occurrence.task_id] = uow.audit.last_task_state(occurrence.task_id)
                last = last_states[occurrence.task_id]
            entry = audit.append(head, occurrence, audit.known_state(last), now)
            if entry.state is not None:
                last_states[entry.task_id] = entry
            head = ChainHead(entry.seq, entry.hash)
            recorded.append(entry)
        appended = [entry for entry in recorded if entry is not None]
        if appended:  # all duplicates: nothing to keep
            uow.audit.append(appended)
            uow.commit()
            metrics.AUDIT_ENTRIES.inc(len(appended), function=CONSUMER)
    for entry in appended:
        log.info("audit: entry recorded", extra={"ce_id": entry.event_id, "task_id": entry.task_id,
                                                 "seq": entry.seq, "action": entry.action})
    return recorded


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
    if type(after) is not int or int64_problem(after) is not None:  # beyond 64 bits no driver binds it
        raise InvalidCursor("the cursor is malformed")
    return after
