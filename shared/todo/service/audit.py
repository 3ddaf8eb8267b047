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
    def task_entries(self, task_id: int, actor: str | None = None) -> list[AuditEntry]:
        """Every entry of the task (of ``actor``'s only, when given), in ``seq`` order."""
        ...
    def append(self, entries: Sequence[AuditEntry]) -> None: ...
    def entries(self) -> Iterator[AuditEntry | Unreadable]: ...
    def find(self, query: AuditQuery, after_seq: int) -> list[AuditEntry]: ...


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
        stored: dict[int, list[AuditEntry]] = {}  # per task, read when an old event needs them
        batch: dict[int, list[AuditEntry]] = {}  # per task, what this batch appends
        for occurrence in occurrences:
            key = (occurrence.source, occurrence.event_id)
            if key not in fresh:
                log.info("audit: event already recorded", extra={"ce_id": occurrence.event_id,
                                                                 "ce_source": occurrence.source})
                recorded.append(None)
                continue
            fresh.discard(key)  # the same event twice in one batch: the second is a duplicate
            previous = None
            if audit.needs_previous_state(occurrence):  # an event written before events carried changes
                if occurrence.task_id not in stored:
                    stored[occurrence.task_id] = uow.audit.task_entries(occurrence.task_id)
                previous = audit.state_before([*stored[occurrence.task_id], *batch.get(occurrence.task_id, ())],
                                              occurrence.version)
            entry = audit.append(head, occurrence, previous, now)
            batch.setdefault(entry.task_id, []).append(entry)
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
    """The trail of one of the caller's tasks, deleted or not, in the order its changes were committed
    (:func:`todo.domain.audit.trail_position`), whatever order their events arrived in; someone else's
    task is not found. A task's trail is short (its own changes and reminders): it is ordered here."""
    after = _after_position(cursor) if cursor is not None else None
    with uow:
        found = uow.audit.task_entries(task_id, actor=user_id)
    if not found:
        raise TaskNotFound(task_id)
    ordered = sorted(found, key=_position)
    rest = [e for e in ordered if after is None or _position(e) > after]
    items = rest[:limit]
    return items, encode_cursor({"after": list(_position(items[-1]))}) if len(rest) > limit else None


def _position(entry: AuditEntry) -> tuple[int, int, int]:
    return audit.trail_position(entry.action, entry.task_version, entry.seq)


def _after_position(cursor: str) -> tuple[int, int, int]:
    after = decode_cursor(cursor).get("after")
    if not isinstance(after, list) or len(after) != 3 or any(type(n) is not int or n < 0 for n in after):
        raise InvalidCursor("the cursor is malformed")
    return after[0], after[1], after[2]


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
