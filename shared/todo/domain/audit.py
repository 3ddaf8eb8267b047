"""The audit trail: append-only entries linked by SHA-256 hash chains, and their verification.

The trail is several chains side by side (docs/audit.md). A user's entries all go to one chain,
the one numbered like the Kafka partition their events travel on (:func:`chain_of`), so that consumers
of different partitions append to different chains and never wait on each other's head.

Each entry's ``hash`` is ``SHA-256(prev_hash + canonical)``, where ``canonical`` is the entry without
its hash as JSON with sorted keys and no whitespace; ``prev_hash`` is the hash of the entry before it
in its chain, and ``position`` its place there (1, 2, 3 … without gaps). Editing, removing, reordering
or moving an entry to another chain breaks a link; removing entries from the end is caught by the
chain's head (its length and last hash, kept apart from the entries and moved on every append).

``seq`` numbers entries across chains in the order they were recorded (unique and increasing within a
chain; the trail's listing order). That is not the order a task's changes were committed in (a broker
may reorder), so each entry also keeps the task version its event is about, and a task's trail is read
in :func:`trail_position` order. Entries recorded before the chains were sharded have no position (and
those before versions were kept no version): they are chain 0's beginning, at positions equal to their
seq, and are hashed without the fields they did not have.
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


def chain_of(partition_key: str, chains: int) -> int:
    """The chain of a user's entries: the partition daprd's Kafka producer puts their events on (sarama's
    hash partitioner, which Dapr's pub/sub uses for ``partitionKey``: FNV-1a 32 of the key, as a signed
    32-bit number, remainder made non-negative). Aligned so, audit-sink consumers own disjoint chains; a
    broker that partitions otherwise costs them only waits, never correctness."""
    digest = 0x811C9DC5
    for byte in partition_key.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    signed = digest - (1 << 32) if digest >= 1 << 31 else digest
    return abs(signed) % chains


@dataclass(frozen=True)
class ChainHead:
    """A chain's length (its last position: positions run 1, 2, 3 … without gaps) and its last hash."""

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
    chain: int = 0
    position: int | None = None  # the place in its chain; None: recorded before chains (chain 0, at its seq)

    @property
    def place(self) -> Any:
        """Where the entry stands in its chain: its position, or for an entry from before chains its seq."""
        return self.seq if self.position is None else self.position

    def canonical(self) -> str:
        """Every stored field but ``hash``, as sorted, whitespace-free JSON. ``task_version`` is left out
        when it is None, ``chain`` and ``position`` when there is no position: entries recorded before
        those existed keep the hash they were chained with."""
        return _canonical_json({
            **({} if self.task_version is None else {"task_version": self.task_version}),
            **({} if self.position is None else {"chain": self.chain, "position": self.position}),
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
            "task_version": self.task_version, "chain": self.chain, "position": self.place,
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
           recorded_at: datetime, *, chain: int = 0, seq: int | None = None) -> AuditEntry:
    """The next entry of the chain whose head is ``head``, numbered ``seq`` across chains (by default
    its position, as in a trail of one chain); its position and hash are the chain's new head."""
    unsigned = AuditEntry(
        seq=head.length + 1 if seq is None else seq,
        chain=chain,
        position=head.length + 1,
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
    """One chain's verification (or, from :func:`verify_chains`, the trail's: every chain's)."""

    ok: bool
    checked: int  # entries examined (all of them when ok; up to the first bad one otherwise)
    first_bad_seq: int | None  # the seq at which the chain first differs from what was appended
    chains: tuple[ChainVerification, ...] = ()
    checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"ok": self.ok, "checked": self.checked, "first_bad_seq": self.first_bad_seq}
        if self.checkpoint is not None:
            found["checkpoint"] = self.checkpoint
            found["chains"] = [c.to_json() for c in self.chains]
        return found


@dataclass(frozen=True)
class ChainVerification:
    chain: int
    head: ChainHead  # as stored
    result: Verification

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "length": self.head.length, "hash": self.head.hash, **self.result.to_json()}


def verify(entries: Iterable[AuditEntry | Unreadable], head: ChainHead) -> Verification:
    """Recompute one chain over ``entries`` (its own, ordered by ``seq``) and hold its end against ``head``.

    ``first_bad_seq`` is the first seq where the chain is not what was appended: an entry whose content
    or link does not hash right, stands at the wrong position, or does not read back at all; where
    entries are missing, the seq after the last one intact (seqs count across chains, so a missing
    entry's own seq is not known; in the chain from before sharding they are consecutive and it is).
    A malformed entry is reported, never raised: the verifier is what finds tampering.
    """
    checked = 0
    previous = ChainHead()
    last_seq = 0
    positioned = False  # entries from before chains (no position) may only open chain 0
    beyond: int | None = None  # the seq of the entry just past the head, when there is one
    for entry in entries:
        checked += 1
        if type(entry.seq) is not int:  # tampered into no number at all: it stands where the next one should
            return Verification(False, checked, last_seq + 1)
        if isinstance(entry, Unreadable):
            return Verification(False, checked, entry.seq)
        if entry.position is None and (positioned or entry.chain != 0):
            return Verification(False, checked, entry.seq)
        positioned = entry.position is not None
        expected = previous.length + 1
        if type(entry.place) is not int or entry.place != expected or entry.seq <= last_seq:
            missing = type(entry.place) is int and entry.place > expected and entry.seq > last_seq
            return Verification(False, checked, last_seq + 1 if missing else entry.seq)
        if entry.prev_hash != previous.hash or not _hashes_right(entry):
            return Verification(False, checked, entry.seq)
        previous, last_seq = ChainHead(entry.place, entry.hash), entry.seq
        if entry.place == head.length + 1:
            beyond = entry.seq
    if previous.length < head.length:  # the end was cut off
        return Verification(False, checked, last_seq + 1)
    if previous.length > head.length:  # entries the head never accounted for (found at the first of them)
        return Verification(False, checked, beyond)
    if previous.hash != head.hash:  # the last entry is not the one appended last
        return Verification(False, checked, max(last_seq, 1))
    return Verification(True, checked, None)


def verify_chains(chains: Mapping[int, tuple[Iterable[AuditEntry | Unreadable], ChainHead]]) -> Verification:
    """Every chain verified on its own; the trail is intact when each is. ``first_bad_seq`` is the lowest
    of the chains' and ``checkpoint`` a hash over every head (:func:`checkpoint`) that operators can
    publish: a later trail whose chains extend the published heads has rewritten nothing before them."""
    results = tuple(ChainVerification(chain, head, verify(entries, head))
                    for chain, (entries, head) in sorted(chains.items()))
    bad = [c.result.first_bad_seq for c in results if c.result.first_bad_seq is not None]
    return Verification(all(c.result.ok for c in results), sum(c.result.checked for c in results),
                        min(bad) if bad else None, results, checkpoint({c.chain: c.head for c in results}))


def checkpoint(heads: Mapping[int, ChainHead]) -> str:
    """SHA-256 over the heads, chain by chain: ``[[chain, length, hash], …]`` as canonical JSON."""
    return hashlib.sha256(_canonical_json([[c, h.length, h.hash] for c, h in sorted(heads.items())]).encode()
                          ).hexdigest()
