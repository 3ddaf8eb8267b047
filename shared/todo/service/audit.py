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
from .events import TOPIC_PARTITIONS
from .queries import InvalidCursor, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

CONSUMER = "audit-sink"
READER_ROLES = ("auditor", "admin")  # who may read and verify the whole trail (any one of them)
MAX_LIMIT = 200
CHAINS = TOPIC_PARTITIONS  # a chain per partition of the topics audit-sink reads (docs/audit.md)


def chain_of(occurrence: Occurrence) -> int:
    """The chain of the occurrence's user (the events' partition key is the user id)."""
    return audit.chain_of(occurrence.actor, CHAINS)


@dataclass(frozen=True)
class AuditQuery:
    """Entries in ``seq`` order, after the one the cursor names; ``since``/``until`` bound ``occurred_at``.

    Entries of different chains are appended at once, so a later seq may commit before an earlier one:
    who follows the trail page by page reads each ``chain`` on its own, where seq order is commit order."""

    actor: str | None = None
    task_id: int | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    chain: int | None = None
    limit: int = 50
    cursor: str | None = None


class AuditStore(Protocol):
    def claim_many(self, consumer: str, events: Iterable[tuple[str, str]],
                   now: datetime) -> set[tuple[str, str]]: ...
    def lock_heads(self, chains: Sequence[int], now: datetime) -> dict[int, ChainHead]:
        """Read the chains' heads and hold them until the transaction ends, locked in ``chains`` order."""
        ...
    def heads(self) -> dict[int, ChainHead]: ...
    def next_seqs(self, count: int) -> list[int]:
        """``count`` new seqs, increasing, above every recorded one (the caller holds its chains' heads)."""
        ...
    def task_entries(self, task_id: int, actor: str | None = None) -> list[AuditEntry]:
        """Every entry of the task (of ``actor``'s only, when given), in ``seq`` order."""
        ...
    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Insert entries (each chain's consecutive, in order) and move each chain's head onto its last."""
        ...
    def chains(self) -> list[int]:
        """Every chain with a head or an entry."""
        ...
    def entries(self, chain: int) -> Iterator[AuditEntry | Unreadable]:
        """The chain's entries in ``seq`` order."""
        ...
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
    """Append an entry per occurrence, in order, each to its user's chain, in one transaction; ``None`` for
    an event recorded before (or earlier in the same batch).

    The claims, the heads' locks and the appends share the transaction: a redelivery waits for the first
    delivery and then finds its claim, and appenders to one chain queue on its head, while those of other
    chains go on (a consumer's partitions are its chains). Heads are locked in chain order, so two
    batches over the same chains cannot deadlock. A batch pays for each lock and head update once.
    """
    with uow:
        fresh = uow.audit.claim_many(CONSUMER, [(o.source, o.event_id) for o in occurrences], now)
        taken: list[Occurrence | None] = []
        for occurrence in occurrences:
            key = (occurrence.source, occurrence.event_id)
            if key not in fresh:
                log.info("audit: event already recorded", extra={"ce_id": occurrence.event_id,
                                                                 "ce_source": occurrence.source})
                taken.append(None)
                continue
            fresh.discard(key)  # the same event twice in one batch: the second is a duplicate
            taken.append(occurrence)
        chains = [None if o is None else chain_of(o) for o in taken]
        wanted = sorted({c for c in chains if c is not None})
        if not wanted:  # all duplicates: nothing to keep
            return [None] * len(occurrences)
        heads = uow.audit.lock_heads(wanted, now)
        seqs = iter(uow.audit.next_seqs(len(occurrences) - chains.count(None)))
        stored: dict[int, list[AuditEntry]] = {}  # per task, read when an old event needs them
        batch: dict[int, list[AuditEntry]] = {}  # per task, what this batch appends
        recorded: list[AuditEntry | None] = []
        for one, chain in zip(taken, chains, strict=True):
            if one is None or chain is None:
                recorded.append(None)
                continue
            occurrence, previous = one, None
            if audit.needs_previous_state(occurrence):  # an event written before events carried changes
                if occurrence.task_id not in stored:
                    stored[occurrence.task_id] = uow.audit.task_entries(occurrence.task_id)
                previous = audit.state_before([*stored[occurrence.task_id], *batch.get(occurrence.task_id, ())],
                                              occurrence.version)
            entry = audit.append(heads[chain], occurrence, previous, now, chain=chain, seq=next(seqs))
            batch.setdefault(entry.task_id, []).append(entry)
            heads[chain] = ChainHead(entry.place, entry.hash)
            recorded.append(entry)
        appended = [entry for entry in recorded if entry is not None]
        uow.audit.append(appended)
        uow.commit()
        metrics.AUDIT_ENTRIES.inc(len(appended), function=CONSUMER)
    # One line per delivery: a line per entry was a tenth of audit-sink's CPU under load (bench P7); each
    # entry's line (its event id, task, seq and chain) is there at DEBUG.
    log.info("audit: entries recorded", extra={"entries": len(appended), "chains": wanted,
                                               "first_seq": appended[0].seq, "last_seq": appended[-1].seq})
    if log.isEnabledFor(logging.DEBUG):
        for entry in appended:
            log.debug("audit: entry recorded", extra={"ce_id": entry.event_id, "task_id": entry.task_id,
                                                      "seq": entry.seq, "chain": entry.chain, "action": entry.action})
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
    """Every chain, each against its head, in one snapshot of the trail; with the heads' checkpoint."""
    with uow.consistent():
        heads = uow.audit.heads()
        return audit.verify_chains({chain: (uow.audit.entries(chain), heads.get(chain, ChainHead()))
                                    for chain in uow.audit.chains()})


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
