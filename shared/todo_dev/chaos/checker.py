"""What a chaos run must show, counted from what was collected: nothing lost, nothing twice, nothing out
of order. Pure: plain data in (``Collected``), counts out (``check``). ``prove`` plants each kind of
defect into a copy of the data and fails when ``check`` misses one, so a clean report means something.

Where each fact comes from:

* a committed change: a 2xx answer the load generator got (``calls``); a 5xx may have committed too, so
  only what was acknowledged is owed;
* its event: the outbox row written in the change's transaction (rows are kept after publishing), by
  task id and version (a delete by task id and type);
* published: the row's ``published_at`` and its id among the records of its topic on Kafka;
* audited: an ``audit_log`` entry with the event's id; in order: per task, the trail's entries as a
  history reads them (``todo.domain.audit.trail_position``: by the task version each entry recorded, then
  ``seq``, which is arrival order) belong to events of increasing task versions (a delete last);
* pushed: each ``seq`` of a user's change feed arrived on one of that user's sockets; each socket got
  strictly increasing seqs;
* advanced: each closed (completed, skipped or deleted) instance ``n`` of a series has one instance
  ``n + 1`` created, never two (rows are hard-deleted, so the outbox's created events count, not rows).
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from todo.domain.audit import trail_position

WRITES = ("create", "create_recurring", "patch", "complete", "skip", "delete")
CLOSING = ("completed", "deleted")  # a skip is a completion with skipped: true
EXAMPLES = 5  # of each finding, to start a diagnosis from


@dataclass
class Collected:
    """Everything a run gathered, as plain JSON-able data (so a copy can be planted with defects)."""

    # One per request: user, function, action, status (0: no answer), t and done (s from the load's
    # start: sent, answered), task_id and version of the answer's task (None when it has none).
    calls: list[dict[str, Any]] = field(default_factory=list)
    # One per fault: kind, target, start, end (s from the load's start).
    faults: list[dict[str, Any]] = field(default_factory=list)
    # One per outbox row: id, event_id, topic, published, type (created|updated|…|push|reminder.*),
    # user_id, task_id, version, series_id, occurrence.
    outbox: list[dict[str, Any]] = field(default_factory=list)
    # One per audit entry: seq, event_id, task_id, action, task_version (absent in runs before it existed).
    audit: list[dict[str, Any]] = field(default_factory=list)
    feed: dict[str, list[int]] = field(default_factory=dict)  # user → the seqs of their change feed
    sockets: list[dict[str, Any]] = field(default_factory=list)  # user, n (per user), seqs as received
    kafka: dict[str, dict[str, int]] = field(default_factory=dict)  # topic → event id → records
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # consumer, topic, event_id, reason
    ended_series: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    lost: dict[str, int]
    duplicated: dict[str, int]
    reordered: dict[str, int]
    unpublished: int
    dead_letters: int
    republished: int  # event ids on Kafka more than once: at-least-once at work (a relay killed mid-drain)
    http: dict[str, dict[str, Any]]  # function → calls, 5xx, unanswered, during its own outage, seconds down, resent
    examples: dict[str, list[Any]]

    @property
    def failures(self) -> int:
        """What makes a run fail: anything lost, duplicated, reordered or never published."""
        return sum(self.lost.values()) + sum(self.duplicated.values()) + sum(self.reordered.values()) \
            + self.unpublished

    @property
    def server_errors(self) -> int:
        """5xx answers (and requests left unanswered) outside the deliberate outage of what served them."""
        return sum(h["5xx"] + h["unanswered"] for h in self.http.values())

    @property
    def clean(self) -> bool:
        return self.failures == 0 and self.server_errors == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "failures": self.failures, "server_errors": self.server_errors, "clean": self.clean}


def check(data: Collected) -> Report:
    examples: dict[str, list[Any]] = defaultdict(list)

    def found(kind: str, what: Any) -> None:
        if len(examples[kind]) < EXAMPLES:
            examples[kind].append(what)

    task_events = [row for row in data.outbox if row["topic"] == "task-events"]
    by_version = {(r["task_id"], r["version"]): r for r in task_events if r["type"] != "deleted"}
    deletes = {r["task_id"]: r for r in task_events if r["type"] == "deleted"}
    lost: Counter[str] = Counter({k: 0 for k in ("event", "kafka", "audit", "push", "next_instance")})
    duplicated: Counter[str] = Counter({k: 0 for k in ("audit", "next_instance", "socket_seq")})
    reordered: Counter[str] = Counter({k: 0 for k in ("trail", "socket")})

    # A change acknowledged to its user has its event.
    for call in data.calls:
        if call["action"] not in WRITES or not 200 <= call["status"] < 300:
            continue
        key = call["task_id"]
        event = deletes.get(key) if call["action"] == "delete" else by_version.get((key, call["version"]))
        if event is None:
            lost["event"] += 1
            found("lost.event", call)

    # Every row is published, and what is published is on its topic.
    unpublished = [r for r in data.outbox if not r["published"]]
    for row in unpublished:
        found("unpublished", row)
    for row in data.outbox:
        if row["published"] and data.kafka.get(row["topic"], {}).get(row["event_id"], 0) == 0:
            lost["kafka"] += 1
            found("lost.kafka", row)
    republished = sum(n - 1 for topic in data.kafka.values() for n in topic.values() if n > 1)

    # Every task event is audited once, and each task's trail is in version order (a delete last).
    audited = Counter(entry["event_id"] for entry in data.audit)
    for row in task_events:
        if audited[row["event_id"]] == 0:
            lost["audit"] += 1
            found("lost.audit", row)
    for event_id, n in audited.items():
        if n > 1:
            duplicated["audit"] += n - 1
            found("duplicated.audit", event_id)
    events = {r["event_id"]: r for r in task_events}
    trails: dict[Any, list[tuple[tuple[int, int, int], tuple[int, int], str]]] = defaultdict(list)
    for entry in data.audit:
        if (event := events.get(entry["event_id"])) is not None:
            position = trail_position(entry["action"], entry.get("task_version"), entry["seq"])
            trails[event["task_id"]].append((position, (event["version"], event["type"] == "deleted"),
                                             event["type"]))
    for task_id, trail in trails.items():
        trail.sort()
        for (_, before, b_type), (position, after, a_type) in itertools.pairwise(trail):
            if after <= before:
                reordered["trail"] += 1
                found("reordered.trail", {"task_id": task_id, "seq": position[-1], "after": [b_type, *before],
                                          "then": [a_type, *after]})

    # Every seq of a feed reached one of its user's sockets; each socket counts up, never back or twice.
    received: dict[str, set[int]] = defaultdict(set)
    for socket in data.sockets:
        received[socket["user"]].update(socket["seqs"])
        for before, after in itertools.pairwise(socket["seqs"]):
            if after == before:
                duplicated["socket_seq"] += 1
                found("duplicated.socket_seq", {"user": socket["user"], "socket": socket["n"], "seq": after})
            elif after < before:
                reordered["socket"] += 1
                found("reordered.socket", {"user": socket["user"], "socket": socket["n"], "seq": after,
                                           "after": before})
    for user, seqs in data.feed.items():
        missing = sorted(set(seqs) - received[user])
        lost["push"] += len(missing)
        if missing:
            found("lost.push", {"user": user, "seqs": missing[:10]})

    # Each closed instance of a series made exactly one next instance.
    made: Counter[tuple[int, int]] = Counter()
    closed: set[tuple[int, int]] = set()
    for row in task_events:
        if row.get("series_id") is None:
            continue
        key = (row["series_id"], row["occurrence"])
        if row["type"] == "created":
            made[key] += 1
        elif row["type"] in CLOSING:
            closed.add(key)
    ended = set(data.ended_series)
    for series_id, occurrence in sorted(closed):
        if series_id not in ended and made[(series_id, occurrence + 1)] == 0:
            lost["next_instance"] += 1
            found("lost.next_instance", {"series_id": series_id, "closed": occurrence})
    for (series_id, occurrence), n in sorted(made.items()):
        if n > 1:
            duplicated["next_instance"] += n - 1
            found("duplicated.next_instance", {"series_id": series_id, "occurrence": occurrence, "made": n})

    return Report(dict(lost), dict(duplicated), dict(reordered), len(unpublished), len(data.dead_letters),
                  republished, _http(data, found), dict(examples))


UNAVAILABLE = (0, 502, 503, 504)  # no answer, or the honest "not now" of a gateway or of a function


def _http(data: Collected, found: Any) -> dict[str, dict[str, Any]]:
    """Per function: 5xx and unanswered requests, apart from those inside a deliberate outage of that
    function (its process killed) or of the database (a restart): those are its unavailability, as long
    as they say so (no answer, 502, 503, 504). A 500 is a server error whenever it comes."""
    def excused(call: dict[str, Any]) -> bool:
        sent, answered = call["t"], call.get("done", call["t"])  # a request sent just before still met it
        return call["status"] in UNAVAILABLE and any(
            sent <= f["end"] + 2.0 and answered >= f["start"]  # and the moment it takes to answer again
                   for f in data.faults
                   if f["target"] in (call["function"], "postgres") and f["kind"] in ("kill", "restart", "relay"))

    out: dict[str, dict[str, Any]] = {}
    for function in sorted({c["function"] for c in data.calls}):
        calls = sorted((c for c in data.calls if c["function"] == function), key=lambda c: c["t"])
        stats: dict[str, Any] = {"calls": len(calls), "5xx": 0, "unanswered": 0, "during_outage": 0, "down_s": 0.0,
                                 "resent": sum(1 for c in calls if c.get("resent"))}
        failing_since: float | None = None
        for call in calls:
            failed = call["status"] == 0 or call["status"] >= 500
            if failed:
                if excused(call):
                    stats["during_outage"] += 1
                else:
                    stats["5xx" if call["status"] else "unanswered"] += 1
                    found(f"http.{function}", call)
                failing_since = call["t"] if failing_since is None else failing_since
            elif failing_since is not None:
                stats["down_s"] += call["t"] - failing_since
                failing_since = None
        stats["down_s"] = round(stats["down_s"], 2)
        out[function] = stats
    return out


# -- the checker proves itself ---------------------------------------------------------------------

PLANTS = ("loss", "duplicate", "reorder", "double_advance", "seq_twice", "5xx")


def plant(data: Collected, kind: str) -> Collected:
    """A copy of ``data`` with one defect of ``kind`` planted; made-up rows where the data has none to
    bend (a run without a recurring task still proves the double-advance count)."""
    bad = copy.deepcopy(data)
    if kind == "loss":  # an event that was never audited
        audited = {e["event_id"] for e in bad.audit}
        events = [r for r in bad.outbox if r["topic"] == "task-events" and r["event_id"] in audited]
        if events:
            gone = events[-1]["event_id"]
            bad.audit = [e for e in bad.audit if e["event_id"] != gone]
        else:
            bad.outbox.append(_event("planted-loss", 10**9, 1, "created"))
    elif kind == "duplicate":  # an event audited twice
        if not bad.audit:
            bad.outbox.append(_event("planted-dup", 10**9, 1, "created"))
            bad.audit.append({"seq": 10**9, "event_id": "planted-dup", "task_id": 10**9, "action": "task.created"})
        last = max(bad.audit, key=lambda e: e["seq"])
        bad.audit.append({**last, "seq": last["seq"] + 1})
    elif kind == "reorder":  # a task's later version audited before its earlier one, and no versions to say so
        task, first, second = 10**9 + 1, "planted-r1", "planted-r2"
        bad.outbox += [_event(first, task, 1, "created"), _event(second, task, 2, "updated")]
        top = max((e["seq"] for e in bad.audit), default=0)
        bad.audit += [{"seq": top + 1, "event_id": second, "task_id": task, "action": "task.updated"},
                      {"seq": top + 2, "event_id": first, "task_id": task, "action": "task.created"}]
    elif kind == "double_advance":  # one instance's successor made twice
        made = [r for r in bad.outbox if r["topic"] == "task-events" and r["type"] == "created"
                and r.get("series_id") is not None and r["occurrence"] > 1]
        if not made:
            made = [_event("planted-first", 10**9 + 2, 1, "created", series=(10**9, 2))]
            bad.outbox.append(made[0])
        twin = dict(made[-1])
        bad.outbox.append({**twin, "id": 10**12, "event_id": "planted-twin", "task_id": twin["task_id"] + 1})
        bad.audit.append({"seq": 10**12, "event_id": "planted-twin", "task_id": twin["task_id"] + 1,
                          "action": "task.created"})
    elif kind == "seq_twice":
        if not bad.sockets:
            bad.sockets.append({"user": "planted", "n": 0, "seqs": [1]})
        socket = max(bad.sockets, key=lambda s: len(s["seqs"]))
        socket["seqs"] = [*socket["seqs"], *socket["seqs"][-1:]] or [1, 1]
    elif kind == "5xx":
        bad.calls.append({"user": "planted", "function": "query-tasks", "action": "list", "status": 500,
                          "t": -1.0, "task_id": None, "version": None})
    else:
        raise ValueError(f"no such plant: {kind}")
    for row in bad.outbox:  # what the plants add counts as published and on Kafka
        if row["event_id"].startswith("planted"):
            bad.kafka.setdefault(row["topic"], {}).setdefault(row["event_id"], 1)
    return bad


def _event(event_id: str, task_id: int, version: int, type_: str,
           series: tuple[int, int] | None = None) -> dict[str, Any]:
    return {"id": 0, "event_id": event_id, "topic": "task-events", "published": True, "type": type_,
            "user_id": "planted", "task_id": task_id, "version": version,
            "series_id": series[0] if series else None, "occurrence": series[1] if series else None}


def _counts(report: Report) -> dict[str, int]:
    return {"loss": sum(report.lost.values()), "duplicate": report.duplicated["audit"],
            "reorder": sum(report.reordered.values()), "double_advance": report.duplicated["next_instance"],
            "seq_twice": report.duplicated["socket_seq"], "5xx": report.server_errors}


def prove(data: Collected, baseline: Report | None = None) -> dict[str, bool]:
    """For each kind of defect: does ``check`` count one more of it once it is planted?"""
    before = _counts(baseline or check(data))
    return {kind: _counts(check(plant(data, kind)))[kind] > before[kind] for kind in PLANTS}
