"""The audit trail: append-only entries linked by a SHA-256 hash chain, and its verification.

Each entry's ``hash`` is ``SHA-256(prev_hash + canonical)``, where ``canonical`` is the entry without
its hash as JSON with sorted keys and no whitespace. Editing, removing or reordering an entry breaks
the link to the entry after it; removing entries from the end is caught by the chain head (the
length and last hash, kept apart from the entries and moved on every append).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .task import iso

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
    state: Any  # the task after the event, so that the next change can be diffed against it
    prev_hash: str
    hash: str

    def canonical(self) -> str:
        """Every stored field but ``hash``, as sorted, whitespace-free JSON."""
        return _canonical_json({
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


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose values differ, each as ``{"from": old, "to": new}`` (absent reads as null)."""
    return {
        name: {"from": before.get(name), "to": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def changes_of(occurrence: Occurrence, previous_state: Mapping[str, Any] | None) -> Any:
    """What the occurrence changed, against the task's last audited state (None: never audited)."""
    if not occurrence.is_task_change:
        return None if occurrence.details is None else dict(occurrence.details)
    assert occurrence.state is not None
    if occurrence.action == TASK_CREATED:
        return dict(occurrence.state)
    if occurrence.action == TASK_DELETED:
        return None  # nothing changed but existence; the entry's state keeps the last one
    return diff(previous_state or {}, occurrence.state)


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
    )
    return replace(unsigned, hash=unsigned.computed_hash())


def known_state(last: AuditEntry | None) -> Any:
    """The task as the trail last knew it, to diff the next change against.

    A deleted task has none: SQLite may give its id to the next task.
    """
    return None if last is None or last.action == TASK_DELETED else last.state


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
