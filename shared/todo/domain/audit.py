"""The audit trail: append-only entries linked by a SHA-256 hash chain, and its verification.

Each entry's ``hash`` is ``SHA-256(prev_hash + canonical)``, where ``canonical`` is the entry without
its hash as JSON with sorted keys and no whitespace. Editing, removing or reordering an entry breaks
the link to the entry after it; removing entries from the end is caught by the chain head (the
length and last hash, kept apart from the entries and moved on every append).

``seq`` is the order entries were recorded in, which is the order events arrived in. That is not the
order a task's changes were committed in (a broker may reorder), so each entry also keeps the task
version its event is about, and a task's trail is read in :func:`trail_position` order. An entry
recorded before versions were kept has none and is hashed without it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .task import diff, iso

GENESIS_HASH = "0" * 64
TASK_CREATED = "task.created"
TASK_DELETED = "task.deleted"


@dataclass(frozen=True)
class Occurrence:
    """Something that happened to a task, as one event tells it."""

    event_id: str
    source: str
    action: str  # the event type's short name: "task.updated", "reminder.triggered"
    actor: str
    task_id: int
    occurred_at: datetime | None  # None: the event does not say; the time it is recorded stands in
    state: Mapping[str, Any] | None = None  # the task after the event (for a deletion: its last state)
    details: Mapping[str, Any] | None = None  # what the event says besides the task (a reminder)
    version: int | None = None  # the task's version the event is about; None: an event that does not say
    changes: Mapping[str, Any] | None = None  # what the writer saw change (updated, completed); None: not told

    @property
    def is_task_change(self) -> bool:
        return self.state is not None


@dataclass(frozen=True)
class ChainHead:
    """The chain's length (the last ``seq``: seqs run 1, 2, 3 … without gaps) and its last hash."""

    length: int = 0
    hash: str = GENESIS_HASH


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    event_id: str
    source: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    action: str
    task_id: int
    changes: Any  # created: the full task; updated: {field: {"from", "to"}}; reminders: their details
    state: Any  # the task after the event
    prev_hash: str
    hash: str
    task_version: int | None = None  # the task version of the event: orders a task's trail (trail_position)

    def canonical(self) -> str:
        """Every stored field but ``hash``, as sorted, whitespace-free JSON. ``task_version`` is left out
        when it is None: entries recorded before it existed keep the hash they were chained with."""
        return _canonical_json({
            **({} if self.task_version is None else {"task_version": self.task_version}),
            "seq": self.seq,
            "event_id": self.event_id,
            "source": self.source,
            "occurred_at": iso(self.occurred_at),
            "recorded_at": iso(self.recorded_at),
            "actor": self.actor,
            "action": self.action,
            "task_id": self.task_id,
            "changes": self.changes,
            "state": self.state,
            "prev_hash": self.prev_hash,
        })

    def computed_hash(self) -> str:
        return chain_hash(self.prev_hash, self.canonical())

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "event_id": self.event_id, "source": self.source,
            "occurred_at": iso(self.occurred_at), "recorded_at": iso(self.recorded_at),
            "actor": self.actor, "action": self.action, "task_id": self.task_id,
            "changes": self.changes, "state": self.state, "prev_hash": self.prev_hash, "hash": self.hash,
            "task_version": self.task_version,
        }


def _hashes_right(entry: AuditEntry) -> bool:
    try:
        return entry.computed_hash() == entry.hash
    except Exception:  # a field no entry can hold (a number JSON cannot write, a time that is a string)
        return False


def chain_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def changes_of(occurrence: Occurrence, previous_state: Mapping[str, Any] | None) -> Any:
    """What the occurrence changed: as its writer saw it when the event says (every event written since
    events carry ``changes``), else against ``previous_state``, the task's audited state of an earlier
    version (None: none audited). Only the former is right whatever order events arrive in."""
    if not occurrence.is_task_change:
        return None if occurrence.details is None else dict(occurrence.details)
    assert occurrence.state is not None
    if occurrence.action == TASK_CREATED:
        return dict(occurrence.state)
    if occurrence.action == TASK_DELETED:
        return None  # nothing changed but existence; the entry's state keeps the last one
    if occurrence.changes is not None:
        return dict(occurrence.changes)
    return diff(previous_state or {}, occurrence.state)


def needs_previous_state(occurrence: Occurrence) -> bool:
    """Whether :func:`changes_of` must be given the task's earlier state: an update or a completion
    whose event does not carry its changes (written before events did)."""
    return occurrence.is_task_change and occurrence.changes is None \
        and occurrence.action not in (TASK_CREATED, TASK_DELETED)


def state_before(entries: Iterable[AuditEntry], version: int | None) -> Any:
    """The task's state in the latest of ``entries`` (one task's) that is about an earlier version than
    ``version``, whatever order they were recorded in: what an old event's change is diffed against.
    Without a version to compare with, the last recorded state stands in (as before versions were kept).

    A deletion is no state to diff against: nothing comes after it."""
    candidates = [e for e in entries if e.state is not None and e.action != TASK_DELETED]
    if version is None:
        return max(candidates, key=lambda e: e.seq).state if candidates else None
    earlier = [(v, e.seq, e) for e in candidates if (v := _version_of(e)) is not None and v < version]
    return max(earlier, key=lambda item: item[:2])[2].state if earlier else None


def _version_of(entry: AuditEntry) -> int | None:
    """The entry's task version; for one recorded before versions were kept, the version its state says."""
    if entry.task_version is not None:
        return entry.task_version
    found = entry.state.get("version") if isinstance(entry.state, dict) else None
    return found if type(found) is int else None


# Within one version: the change itself, then the reminders planned or fired from it, then a deletion
# (which carries the version of the task's last change).
_RANK_CHANGE, _RANK_REMINDER, _RANK_DELETION = 0, 1, 2


def trail_rank(action: str) -> int:
    if action == TASK_DELETED:
        return _RANK_DELETION
    return _RANK_CHANGE if action.startswith("task.") else _RANK_REMINDER


def trail_position(action: str, task_version: int | None, seq: int) -> tuple[int, int, int]:
    """Where an entry stands in its task's trail: commit order, not arrival order. By task version (an
    entry without one, recorded before versions were kept, comes first as it did: 0), then change before
    reminders before deletion, then ``seq``. A task's history and the chaos checker read a trail so."""
    return (task_version or 0, trail_rank(action), seq)


def append(head: ChainHead, occurrence: Occurrence, previous_state: Mapping[str, Any] | None,
           recorded_at: datetime) -> AuditEntry:
    """The next entry of the chain whose head is ``head``; its ``seq`` and ``hash`` are the new head."""
    unsigned = AuditEntry(
        seq=head.length + 1,
        event_id=occurrence.event_id,
        source=occurrence.source,
        occurred_at=_utc(occurrence.occurred_at or recorded_at),
        recorded_at=_utc(recorded_at),
        actor=occurrence.actor,
        action=occurrence.action,
        task_id=occurrence.task_id,
        changes=_plain(changes_of(occurrence, previous_state)),
        state=_plain(occurrence.state),
        prev_hash=head.hash,
        hash="",
        task_version=occurrence.version,
    )
    return replace(unsigned, hash=unsigned.computed_hash())


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("an audit time must be timezone-aware")
    return value.astimezone(UTC)


def _plain(value: Any) -> Any:
    """JSON values only, as they read back from the store: what is hashed is what is kept."""
    return None if value is None else json.loads(_canonical_json(value))


@dataclass(frozen=True)
class Unreadable:
    """A row of the trail that does not read back as an entry (a value no entry can have: a time that is
    no time, JSON that does not parse): bad wherever it stands."""

    seq: Any


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int  # entries examined (all of them when ok; up to the first bad one otherwise)
    first_bad_seq: int | None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq}


def verify(entries: Iterable[AuditEntry | Unreadable], head: ChainHead) -> Verification:
    """Recompute the chain over ``entries`` (ordered by ``seq``) and hold its end against ``head``.

    ``first_bad_seq`` is the first position where the trail is not what was appended: an entry
    whose content or link does not hash right, or does not read back at all, or the seq where entries
    are missing. A malformed entry is reported, never raised: the verifier is what finds tampering.
    """
    checked = 0
    previous = ChainHead()
    for entry in entries:
        checked += 1
        expected_seq = previous.length + 1
        if type(entry.seq) is not int:  # tampered into no number at all: it stands where the next one should
            return Verification(False, checked, expected_seq)
        if entry.seq != expected_seq:
            return Verification(False, checked, min(entry.seq, expected_seq))
        if isinstance(entry, Unreadable) or entry.prev_hash != previous.hash or not _hashes_right(entry):
            return Verification(False, checked, entry.seq)
        previous = ChainHead(entry.seq, entry.hash)
    if previous.length < head.length:  # the end was cut off
        return Verification(False, checked, previous.length + 1)
    if previous.length > head.length:  # entries the head never accounted for
        return Verification(False, checked, head.length + 1)
    if previous.hash != head.hash:  # the last entry is not the one appended last
        return Verification(False, checked, max(previous.length, 1))
    return Verification(True, checked, None)
