"""The audit trail's rules without a database: what an entry holds, how it is chained, how tampering shows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from todo.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    ChainHead,
    Occurrence,
    append,
    chain_of,
    changes_of,
    diff,
    state_before,
    trail_position,
    verify,
    verify_chains,
)
from todo.service import audit as service
from todo.service.audit import AuditQuery

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def task(title: str = "pay rent", version: int = 1, **more: Any) -> dict[str, Any]:
    return {"id": 7, "title": title, "status": "open", "tags": [], "version": version, **more}


def occurrence(action: str = "task.created", state: Mapping[str, Any] | None = None, n: int = 0,
               **more: Any) -> Occurrence:
    values: dict[str, Any] = {"event_id": f"e{n}", "source": "/todo/functions/create-task", "action": action,
                              "actor": "alice", "task_id": 7, "occurred_at": T0 + timedelta(minutes=n),
                              "state": task() if state is None and action.startswith("task.") else state}
    return Occurrence(**{**values, **more})


def chain(length: int) -> tuple[list[AuditEntry], ChainHead]:
    head, entries = ChainHead(), []
    for n in range(length):
        action = "task.created" if n == 0 else "task.updated"
        entry = append(head, occurrence(action, task(f"title {n}", n + 1), n), None, T0 + timedelta(hours=n))
        entries.append(entry)
        head = ChainHead(entry.seq, entry.hash)
    return entries, head


# -- an entry -------------------------------------------------------------------------------------


def test_the_first_entry_links_to_64_zeros_and_hashes_prev_hash_plus_canonical_json() -> None:
    entry = append(ChainHead(), occurrence(), None, T0)
    assert (entry.seq, entry.prev_hash) == (1, "0" * 64) and GENESIS_HASH == "0" * 64
    canonical = entry.canonical()
    assert " " not in canonical.replace("pay rent", "")
    stored = json.loads(canonical)
    assert list(stored) == sorted(stored)
    assert set(stored) == set(entry.to_json()) - {"hash", "task_version"}  # no version: hashed as before
    assert entry.hash == hashlib.sha256(("0" * 64 + canonical).encode()).hexdigest()


def test_the_canonical_form_is_pinned_by_a_known_hash() -> None:
    """Changing what is hashed, or how, would orphan every recorded chain: this must never change."""
    entry = append(ChainHead(), occurrence(), None, T0, chain=5, seq=17)
    assert entry.canonical() == (
        '{"action":"task.created","actor":"alice","chain":5,"changes":{"id":7,"status":"open","tags":[],'
        '"title":"pay rent","version":1},"event_id":"e0","occurred_at":"2026-01-01T09:00:00Z","position":1,'
        '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
        '"recorded_at":"2026-01-01T09:00:00Z","seq":17,"source":"/todo/functions/create-task",'
        '"state":{"id":7,"status":"open","tags":[],"title":"pay rent","version":1},"task_id":7}'
    )
    assert entry.hash == "53c7f4076272ab0ac862f4a24901db6a862fdad94dba6971a6add3da4c87263b"


def test_an_entry_from_before_chains_hashes_as_it_always_did() -> None:
    """An entry without a position (recorded on the one chain there was) leaves chain and position out."""
    entry = replace(append(ChainHead(), occurrence(), None, T0), position=None)
    assert entry.canonical() == (
        '{"action":"task.created","actor":"alice","changes":{"id":7,"status":"open","tags":[],'
        '"title":"pay rent","version":1},"event_id":"e0","occurred_at":"2026-01-01T09:00:00Z",'
        '"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000",'
        '"recorded_at":"2026-01-01T09:00:00Z","seq":1,"source":"/todo/functions/create-task",'
        '"state":{"id":7,"status":"open","tags":[],"title":"pay rent","version":1},"task_id":7}'
    )
    assert entry.computed_hash() == "319db458a908b9d5630d41f4459538e9f34ccb7cb1d60da49c1dedae741a8123"


def test_an_entry_with_a_task_version_hashes_it_and_one_without_hashes_as_entries_always_did() -> None:
    without = append(ChainHead(), occurrence(), None, T0)
    versioned = append(ChainHead(), occurrence(version=1), None, T0)
    assert "task_version" not in json.loads(without.canonical()) and without.task_version is None
    assert json.loads(versioned.canonical())["task_version"] == 1 and versioned.hash != without.hash
    entries, head = [versioned], ChainHead(1, versioned.hash)
    assert verify(entries, head).ok
    assert verify([replace(versioned, task_version=2)], head).first_bad_seq == 1
    assert verify([replace(versioned, task_version=None)], head).first_bad_seq == 1


def test_times_are_kept_in_utc_and_a_missing_event_time_takes_the_recording_time() -> None:
    paris = datetime(2026, 1, 1, 11, 0, tzinfo=ZoneInfo("Europe/Paris"))
    entry = append(ChainHead(), occurrence(occurred_at=paris), None, T0)
    assert entry.occurred_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC) and entry.occurred_at.tzinfo is UTC
    untimed = append(ChainHead(), occurrence(occurred_at=None), None, T0)
    assert untimed.occurred_at == T0


def test_created_keeps_the_full_task_updates_keep_a_diff_deleted_keeps_nothing() -> None:
    before, after = task(), task("pay the rent", 2, tags=["home"])
    assert changes_of(occurrence("task.created", before), None) == before
    assert changes_of(occurrence("task.updated", after), before) == {
        "title": {"from": "pay rent", "to": "pay the rent"},
        "version": {"from": 1, "to": 2},
        "tags": {"from": [], "to": ["home"]},
    }
    assert changes_of(occurrence("task.completed", after), after) == {}
    assert changes_of(occurrence("task.deleted", after), after) is None
    assert changes_of(occurrence("task.updated", after), None) == {k: {"from": None, "to": v} for k, v in after.items()}


def test_a_reminder_entry_keeps_its_details_and_no_task_state() -> None:
    details = {"title": "pay rent", "due_at": "2026-01-02T09:00:00Z", "remind_at": "2026-01-02T08:45:00Z"}
    entry = append(ChainHead(), occurrence("reminder.scheduled", None, details=details), None, T0)
    assert (entry.changes, entry.state) == (details, None)


def test_diff_reads_an_absent_field_as_null() -> None:
    assert diff({"a": 1}, {"b": 2}) == {"a": {"from": 1, "to": None}, "b": {"from": None, "to": 2}}
    assert diff({"a": 1}, {"a": 1}) == {}


def test_an_event_that_carries_its_changes_is_recorded_with_them_not_with_a_diff() -> None:
    told = {"title": {"from": "pay rent", "to": "pay the rent"}}
    updated = occurrence("task.updated", task("pay the rent", 4), version=4, changes=told)
    assert changes_of(updated, task("something else entirely", 9)) == told


def test_an_old_events_change_is_diffed_against_the_state_of_the_version_before_it_whatever_the_arrival_order(
        ) -> None:
    entries = [append(ChainHead(), occurrence("task.updated", task(f"v{v}", v), v, version=v), None, T0)
               for v in (4, 1, 3, 2)]  # recorded out of order
    assert state_before(entries, 3)["title"] == "v2"
    assert state_before(entries, 1) is None
    old = replace(entries[0], task_version=None, seq=9)  # recorded before versions were kept: its state says
    assert state_before([old], 5)["title"] == "v4"
    deleted = replace(entries[3], action="task.deleted", seq=10)
    assert state_before([deleted], 3) is None  # a deletion is no state to diff against


def test_a_tasks_trail_is_in_version_order_with_reminders_after_their_change_and_the_deletion_last() -> None:
    recorded = [("task.deleted", 3, 1), ("reminder.scheduled", 1, 2), ("task.updated", 3, 3),
                ("task.created", 1, 4), ("task.completed", 2, 5), ("reminder.triggered", None, 6)]
    ordered = sorted(recorded, key=lambda e: trail_position(*e))
    assert [action for action, _, _ in ordered] == ["reminder.triggered", "task.created", "reminder.scheduled",
                                                    "task.completed", "task.updated", "task.deleted"]


# -- verification ---------------------------------------------------------------------------------


def test_an_intact_chain_verifies_and_counts_its_entries() -> None:
    entries, head = chain(5)
    assert verify(entries, head).to_json() == {"ok": True, "checked": 5, "first_bad_seq": None}
    assert verify([], ChainHead()).to_json() == {"ok": True, "checked": 0, "first_bad_seq": None}


def test_an_edited_entry_is_found_at_its_seq() -> None:
    entries, head = chain(5)
    entries[2] = replace(entries[2], actor="mallory")
    assert verify(entries, head).to_json() == {"ok": False, "checked": 3, "first_bad_seq": 3}


def test_an_edited_entry_given_a_fresh_hash_breaks_the_link_of_the_next() -> None:
    entries, head = chain(5)
    forged = replace(entries[2], changes={"title": {"from": "x", "to": "y"}})
    entries[2] = replace(forged, hash=forged.computed_hash())
    assert verify(entries, head).first_bad_seq == 4


def test_a_deleted_entry_leaves_a_gap_found_at_the_missing_seq() -> None:
    entries, head = chain(5)
    del entries[1]
    assert verify(entries, head).to_json() == {"ok": False, "checked": 2, "first_bad_seq": 2}


def test_reordered_entries_are_found() -> None:
    entries, head = chain(5)
    entries[1], entries[2] = replace(entries[2], seq=2), replace(entries[1], seq=3)
    assert verify(entries, head).first_bad_seq == 2


def test_a_cut_off_tail_is_found_by_the_chain_head() -> None:
    entries, head = chain(5)
    assert verify(entries[:3], head).to_json() == {"ok": False, "checked": 3, "first_bad_seq": 4}
    assert verify([], head).first_bad_seq == 1


def test_entries_the_head_never_recorded_are_found() -> None:
    entries, _ = chain(5)
    assert verify(entries, ChainHead(3, entries[2].hash)).first_bad_seq == 4


def test_a_replaced_last_entry_is_found_by_the_head_hash() -> None:
    entries, head = chain(3)
    forged = replace(entries[2], actor="mallory")
    entries[2] = replace(forged, hash=forged.computed_hash())
    assert verify(entries, head).to_json() == {"ok": False, "checked": 3, "first_bad_seq": 3}


@given(length=st.integers(1, 12), data=st.data())
def test_any_single_edit_anywhere_is_found_exactly_there(length: int, data: st.DataObject) -> None:
    entries, head = chain(length)
    index = data.draw(st.integers(0, length - 1))
    field, value = data.draw(st.sampled_from([("actor", "mallory"), ("task_id", 8), ("action", "task.deleted"),
                                              ("occurred_at", T0 - timedelta(days=1)), ("state", None)]))
    entries[index] = replace(entries[index], **{field: value})
    assert verify(entries, head).first_bad_seq == index + 1


# -- chains ---------------------------------------------------------------------------------------


def test_a_users_chain_is_the_partition_daprds_kafka_producer_gives_their_events() -> None:
    """Expected values from Go's hash/fnv with sarama's HashPartitioner arithmetic, over 12 partitions."""
    expected = {"alice": 5, "bob": 8, "carol": 2, "user-1": 0, "bench-p7-0": 0, "ünï": 2}
    assert {key: chain_of(key, 12) for key in expected} == expected


def legacy(length: int) -> tuple[list[AuditEntry], ChainHead]:
    """A trail recorded before chains: one chain, no positions, seq 1 … length."""
    head, entries = ChainHead(), []
    for n in range(length):
        entry = replace(append(head, occurrence("task.updated", task(f"v{n}", n + 1), n), None, T0), position=None)
        entry = replace(entry, hash=entry.computed_hash())
        entries.append(entry)
        head = ChainHead(entry.seq, entry.hash)
    return entries, head


def test_chain_0_goes_on_from_the_trail_recorded_before_chains_and_verifies_whole() -> None:
    entries, head = legacy(3)
    for seq in (7, 12):  # seqs count across chains: chain 0's next entries come later, with gaps
        entry = append(head, occurrence("task.updated", n=seq), None, T0, chain=0, seq=seq)
        entries.append(entry)
        head = ChainHead(entry.place, entry.hash)
    assert [(e.seq, e.place) for e in entries] == [(1, 1), (2, 2), (3, 3), (7, 4), (12, 5)]
    assert verify(entries, head).to_json() == {"ok": True, "checked": 5, "first_bad_seq": None}
    assert verify(entries[:3] + entries[4:], head).first_bad_seq == 4  # the entry at position 4 is missing
    assert verify([*entries, replace(entries[0], seq=13)], head).first_bad_seq == 13  # no position after chains


def test_an_entry_moved_to_another_chain_or_renumbered_there_is_found() -> None:
    head, entries = ChainHead(), []
    for n, seq in enumerate((2, 5, 9)):
        entry = append(head, occurrence(n=n), None, T0, chain=4, seq=seq)
        entries.append(entry)
        head = ChainHead(entry.place, entry.hash)
    assert verify(entries, head).ok
    assert verify([entries[0], replace(entries[1], chain=3), entries[2]], head).first_bad_seq == 5
    assert verify([entries[0], replace(entries[1], seq=6), entries[2]], head).first_bad_seq == 6
    assert verify([entries[0], entries[2]], head).first_bad_seq == 3  # position 2 missing: after seq 2


def test_every_chain_is_verified_on_its_own_and_the_checkpoint_covers_every_head() -> None:
    heads: dict[int, ChainHead] = {}
    chains: dict[int, list[AuditEntry]] = {}
    for seq, user in enumerate(["alice", "bob", "alice", "carol", "bob", "alice"], start=1):
        c = chain_of(user, 12)
        entry = append(heads.get(c, ChainHead()), occurrence(n=seq, actor=user), None, T0, chain=c, seq=seq)
        chains.setdefault(c, []).append(entry)
        heads[c] = ChainHead(entry.place, entry.hash)
    result = verify_chains({c: (entries, heads[c]) for c, entries in chains.items()})
    assert result.ok and result.checked == 6 and [c.chain for c in result.chains] == [2, 5, 8]
    assert [c.result.checked for c in result.chains] == [1, 3, 2]
    tampered = {**chains, 8: [replace(chains[8][0], actor="mallory"), chains[8][1]]}
    broken = verify_chains({c: (entries, heads[c]) for c, entries in tampered.items()})
    assert not broken.ok and broken.first_bad_seq == 2
    assert [c.result.ok for c in broken.chains] == [True, True, False]
    assert broken.checkpoint == result.checkpoint  # the heads did not move: only the entries lie
    moved = {**heads, 5: ChainHead(2, chains[5][1].hash)}
    assert verify_chains({c: (entries, moved[c]) for c, entries in chains.items()}).checkpoint != result.checkpoint


# -- the use case, on fakes -----------------------------------------------------------------------


class FakeAuditStore:
    def __init__(self) -> None:
        self.entries_: list[AuditEntry] = []
        self.claimed: set[tuple[str, str, str]] = set()
        self.heads_: dict[int, ChainHead] = {}
        self.locked: list[list[int]] = []

    def claim_many(self, consumer: str, events: Iterable[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        fresh = {(source, event_id) for source, event_id in events if (consumer, source, event_id) not in self.claimed}
        self.claimed.update((consumer, source, event_id) for source, event_id in fresh)
        return fresh

    def lock_heads(self, chains: Sequence[int], now: datetime) -> dict[int, ChainHead]:
        self.locked.append(list(chains))
        return {c: self.heads_.get(c, ChainHead()) for c in chains}

    def heads(self) -> dict[int, ChainHead]:
        return dict(self.heads_)

    def next_seqs(self, count: int) -> list[int]:
        last = max((e.seq for e in self.entries_), default=0)
        return list(range(last + 1, last + 1 + count))

    def task_entries(self, task_id: int, actor: str | None = None) -> list[AuditEntry]:
        return [e for e in self.entries_ if e.task_id == task_id and actor in (None, e.actor)]

    def append(self, entries: Sequence[AuditEntry]) -> None:
        for entry in entries:
            head = self.heads_.get(entry.chain, ChainHead())
            assert entry.place == head.length + 1 and entry.prev_hash == head.hash
            self.entries_.append(entry)
            self.heads_[entry.chain] = ChainHead(entry.place, entry.hash)

    def chains(self) -> list[int]:
        return sorted(self.heads_)

    def entries(self, chain: int) -> Iterator[AuditEntry]:
        return iter([e for e in self.entries_ if e.chain == chain])

    def find(self, query: AuditQuery, after_seq: int) -> list[AuditEntry]:
        found = [e for e in self.entries_ if e.seq > after_seq and query.task_id in (None, e.task_id)]
        return found[: query.limit + 1]


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.audit = FakeAuditStore()
        self.commits = 0

    def consistent(self) -> Self:
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        pass

    def commit(self) -> None:
        self.commits += 1


def test_recording_an_event_twice_appends_once() -> None:
    uow = FakeUnitOfWork()
    first = service.record(uow, occurrence(), T0)
    assert first is not None and first.seq == 1
    assert service.record(uow, occurrence(), T0) is None
    assert (len(uow.audit.entries_), uow.commits) == (1, 1)


def test_an_event_without_its_changes_is_diffed_against_the_previous_audited_state_of_its_task() -> None:
    uow = FakeUnitOfWork()
    service.record(uow, occurrence("task.created", task(), 0), T0)
    service.record(uow, occurrence("task.created", task("other"), 1, task_id=8), T0)
    service.record(uow, occurrence("task.updated", task("paid", 2), 2), T0)
    updated = uow.audit.entries_[-1]
    assert updated.changes == {"title": {"from": "pay rent", "to": "paid"}, "version": {"from": 1, "to": 2}}
    assert service.verify(uow).ok


def test_pages_carry_a_cursor_to_the_next_entry() -> None:
    uow = FakeUnitOfWork()
    for n in range(5):
        service.record(uow, occurrence("task.updated", task(version=n), n), T0)
    first, cursor = service.find_entries(uow, AuditQuery(limit=2))
    assert [e.seq for e in first] == [1, 2] and cursor is not None
    second, cursor = service.find_entries(uow, AuditQuery(limit=2, cursor=cursor))
    third, last = service.find_entries(uow, AuditQuery(limit=2, cursor=cursor))
    assert [e.seq for e in second] == [3, 4] and [e.seq for e in third] == [5] and last is None


def test_a_batch_records_what_one_by_one_would_and_skips_duplicates_inside_it() -> None:
    changes = [occurrence("task.created", task(), 0), occurrence("task.created", task("other"), 1, task_id=8),
               occurrence("task.updated", task("paid", 2), 2), occurrence("task.updated", task("done", 3), 3)]
    one_by_one = FakeUnitOfWork()
    for change in changes:
        service.record(one_by_one, change, T0)
    batched = FakeUnitOfWork()
    service.record(batched, changes[0], T0)  # delivered before, alone
    recorded = service.record_many(batched, [changes[0], *changes[1:3], changes[2], changes[3]], T0)
    assert [e is None for e in recorded] == [True, False, False, True, False]
    assert batched.audit.entries_ == one_by_one.audit.entries_  # same seqs, diffs and hashes
    assert batched.commits == 2 and service.verify(batched).ok


def test_a_batch_appends_each_user_to_their_own_chain_locking_the_heads_in_chain_order() -> None:
    uow = FakeUnitOfWork()
    users = ["bob", "alice", "carol", "bob"]  # chains 8, 5, 2, 8 of 12
    recorded = service.record_many(uow, [occurrence(n=n, actor=user, task_id=n) for n, user in enumerate(users)], T0)
    assert [(e.seq, e.chain, e.position) for e in recorded if e is not None] == [
        (1, 8, 1), (2, 5, 1), (3, 2, 1), (4, 8, 2)]
    assert uow.audit.locked == [[2, 5, 8]]
    result = service.verify(uow)
    assert result.ok and [(c.chain, c.head.length) for c in result.chains] == [(2, 1), (5, 1), (8, 2)]
    assert service.CHAINS == 12
