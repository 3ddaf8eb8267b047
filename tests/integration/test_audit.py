"""The audit trail end to end, on SQLite and PostgreSQL: audit-sink records, the API reads and verifies."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from starlette.testclient import TestClient

from todo import cli
from todo.adapters.audit_store import SqlAuditStore, SqlAuditUnitOfWork
from todo.adapters.dead_letters import SqlDeadLetters
from todo.adapters.tables import AUDIT_TABLES, audit_chain_heads, audit_log, outbox
from todo.domain.audit import AuditEntry, Occurrence
from todo.domain.task import Reminder, Status, Task, TaskEvent, TaskFields, iso
from todo.gateway import load_function
from todo.runtime import Runtime
from todo.service import audit
from todo.service import tasks as tasks_service
from todo.service.events import task_cloud_event
from todo.service.tasks import Context
from todo.settings import Settings, get_settings

from .conftest import Api

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
FAR_FUTURE = datetime(2100, 1, 1, 9, 0, tzinfo=UTC)
STRUCTURED = {"content-type": "application/cloudevents+json"}


@pytest.fixture
def sink(client: TestClient, runtime: Runtime) -> TestClient:
    """audit-sink on its own, as daprd or a KafkaSource reaches it, on the gateway's runtime."""
    return TestClient(load_function("audit-sink", runtime))


@pytest.fixture
def auditor(client: TestClient, token) -> Api:  # type: ignore[no-untyped-def]
    return Api(client, token("carol", ["auditor"]))


def task_event(event_type: str, task_id: int = 1, user: str = "alice", title: str = "pay rent", version: int = 1,
               at: datetime = T0) -> dict[str, Any]:
    status = Status.COMPLETED if event_type == "completed" else Status.OPEN
    task = Task(task_id, user, TaskFields(title=title), status, at if status is Status.COMPLETED else None, T0, at,
                version)
    return task_cloud_event(TaskEvent(event_type, task, at), "update-task").cloud_event


def reminder_event(kind: str = "scheduled", task_id: int = 1, user: str = "alice",
                   at: datetime = T0) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todo/functions/reminders",
            "type": f"dev.todo.reminder.{kind}.v1", "time": iso(at), "datacontenttype": "application/json",
            "data": {"task_id": task_id, "title": "pay rent", "due_at": "2026-01-02T09:00:00Z",
                     "remind_at": "2026-01-02T08:45:00Z", "user_id": user}}


def deliver(sink: TestClient, event: dict[str, Any]) -> Any:
    response = sink.post("/events", content=json.dumps(event), headers=STRUCTURED)
    assert response.json() == {"status": "SUCCESS"}, response.text
    return response


def binary(event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    """The Knative KafkaSource form: attributes as ``ce-*`` headers, the data as the body."""
    headers = {f"ce-{k}": str(v) for k, v in event.items() if k not in ("data", "datacontenttype")}
    return {**headers, "content-type": "application/json"}, json.dumps(event["data"]).encode()


def entries(engine: Engine) -> list[AuditEntry]:
    """Every chain's entries, in seq order."""
    with engine.connect() as conn:
        store = SqlAuditStore(conn)
        found = [entry for chain in store.chains() for entry in store.entries(chain)]
    return sorted(found, key=lambda entry: entry.seq)  # type: ignore[no-any-return]


def dead_letters(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return SqlDeadLetters(conn).latest()


def verified(engine: Engine) -> dict[str, Any]:
    """The trail's verdict (every chain's, with the checkpoint left out)."""
    return summary(audit.verify(SqlAuditUnitOfWork(engine)).to_json())


def summary(verification: dict[str, Any]) -> dict[str, Any]:
    return {key: verification[key] for key in ("ok", "checked", "first_bad_seq")}


@contextlib.contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """A transaction in which the audit tables' guards are off, as only someone with the keys could."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for name in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {name} DISABLE TRIGGER USER"))
            yield conn
            for name in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {name} ENABLE TRIGGER USER"))
            return
        triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name IN ('audit_log', 'audit_chain_heads')")).all()
        assert triggers, "the audit tables have no guards to switch off"
        for name, _ in triggers:
            conn.execute(text(f"DROP TRIGGER {name}"))
        yield conn
        for _, sql in triggers:
            conn.execute(text(sql))


def run_cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    monkeypatch.setenv("TODO_DATA_DIR", str(settings.data_dir))
    if settings.database_url is None:
        monkeypatch.delenv("TODO_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("TODO_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("TODO_DATABASE_SSLMODE", settings.database_sslmode)
    get_settings.cache_clear()  # read once per process: this "process" has just been given its environment
    try:
        return cli.main(list(argv))
    finally:
        get_settings.cache_clear()


# -- recording ------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["dapr", "knative"])
def test_an_event_delivered_twice_is_recorded_once(sink: TestClient, engine: Engine, form: str) -> None:
    event = task_event("created")
    for _ in range(2):
        if form == "dapr":
            deliver(sink, event)
        else:
            headers, body = binary(event)
            assert sink.post("/events", content=body, headers=headers).status_code == 200
    assert [(e.seq, e.event_id, e.source) for e in entries(engine)] == [(1, event["id"], event["source"])]
    assert verified(engine)["checked"] == 1


def test_each_change_records_who_what_when_and_a_diff_against_the_last_audited_state(
        sink: TestClient, engine: Engine) -> None:
    created = task_event("created")
    deliver(sink, created)
    deliver(sink, task_event("created", task_id=2, title="other task"))
    deliver(sink, task_event("updated", title="pay the rent", version=2, at=T0 + timedelta(hours=1)))
    deliver(sink, task_event("completed", title="pay the rent", version=3, at=T0 + timedelta(hours=2)))
    deliver(sink, task_event("deleted", title="pay the rent", version=3, at=T0 + timedelta(hours=3)))
    trail = [e for e in entries(engine) if e.task_id == 1]
    assert [e.action for e in trail] == ["task.created", "task.updated", "task.completed", "task.deleted"]
    assert {e.actor for e in trail} == {"alice"}
    assert [e.occurred_at for e in trail] == [T0 + timedelta(hours=h) for h in range(4)]
    assert all(e.recorded_at > T0 for e in trail)
    assert trail[0].changes == created["data"]["task_data"]
    assert trail[1].changes == {"title": {"from": "pay rent", "to": "pay the rent"}, "version": {"from": 1, "to": 2},
                                "updated_at": {"from": "2026-01-01T09:00:00Z", "to": "2026-01-01T10:00:00Z"}}
    assert set(trail[2].changes) == {"status", "completed_at", "version", "updated_at"}
    assert trail[3].changes is None and trail[3].state["title"] == "pay the rent"


def test_reminder_events_are_recorded_with_their_details(sink: TestClient, engine: Engine) -> None:
    deliver(sink, task_event("created"))
    deliver(sink, reminder_event("scheduled", at=T0 + timedelta(minutes=1)))
    deliver(sink, reminder_event("triggered", at=T0 + timedelta(days=1)))
    reminders = entries(engine)[1:]
    assert [e.action for e in reminders] == ["reminder.scheduled", "reminder.triggered"]
    assert reminders[0].changes == {"title": "pay rent", "due_at": "2026-01-02T09:00:00Z",
                                    "remind_at": "2026-01-02T08:45:00Z"}
    assert reminders[1].occurred_at == T0 + timedelta(days=1) and reminders[1].state is None
    assert verified(engine)["ok"] is True


def race(threads: int, work: Callable[[int], None]) -> None:
    """Run ``work(worker)`` on ``threads`` threads released together; fail with the first error."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            start.wait()
            work(worker)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert errors == []


def test_concurrent_appenders_never_fork_the_chain(engine: Engine) -> None:
    threads, per_thread = 4, 8
    same = Occurrence("shared-event", "/todo/functions/update-task", "task.updated", "alice", 1, T0, {"id": 1})

    def append(worker: int) -> None:
        audit.record(SqlAuditUnitOfWork(engine), same, datetime.now(UTC))  # every thread, the same event
        for n in range(per_thread):
            occurrence = Occurrence(f"e{worker}-{n}", "/todo/functions/update-task", "task.updated",
                                    f"user{worker}", 100 + worker, T0, {"id": 100 + worker, "n": n})
            audit.record(SqlAuditUnitOfWork(engine), occurrence, datetime.now(UTC))

    race(threads, append)
    trail = entries(engine)
    assert len(trail) == threads * per_thread + 1
    for chain in {e.chain for e in trail}:  # each chain gap-free, whoever appended
        positions = [e.position for e in trail if e.chain == chain]
        assert positions == list(range(1, len(positions) + 1))
    assert [e.event_id for e in trail].count("shared-event") == 1
    assert verified(engine) == {"ok": True, "checked": threads * per_thread + 1, "first_bad_seq": None}


def test_concurrent_overlapping_batches_record_each_event_once(engine: Engine) -> None:
    """Bulk deliveries racing with shared events (a redelivery to two processes): no deadlock, no fork."""
    events = [Occurrence(f"b{n}", "/todo/functions/update-task", "task.updated", "alice", 1, T0, {"id": 1, "n": n})
              for n in range(40)]

    def append(worker: int) -> None:
        mine = events[worker * 5: worker * 5 + 25]  # overlapping windows, in different orders
        for _ in range(3):
            audit.record_many(SqlAuditUnitOfWork(engine), mine[::-1] if worker % 2 else mine, datetime.now(UTC))

    race(4, append)
    trail = entries(engine)
    assert sorted(e.event_id for e in trail) == sorted(f"b{n}" for n in range(40))
    assert [e.seq for e in trail] == list(range(1, 41))
    assert verified(engine) == {"ok": True, "checked": 40, "first_bad_seq": None}


def test_a_bulk_delivery_records_its_good_events_and_dead_letters_its_poison(sink: TestClient,
                                                                             engine: Engine) -> None:
    good = [{**task_event("created", title="a"), "id": "bulk-1"}, {**task_event("updated", title="b"), "id": "bulk-2"}]
    body = {"id": "x", "type": "com.dapr.event.sent.bulk", "entries": [
        {"entryId": "1", "event": good[0]}, {"entryId": "2", "event": {**good[1], "id": "bad", "data": {"nope": 1}}},
        {"entryId": "3", "event": good[1]}, {"entryId": "4", "event": good[0]}]}
    response = sink.post("/events", json=body)
    # The poison entry is kept as a dead letter with its reason: the delivery has nothing left to retry.
    assert [s["status"] for s in response.json()["statuses"]] == ["SUCCESS"] * 4
    assert [(e.event_id, e.action) for e in entries(engine)] == [("bulk-1", "task.created"),
                                                                 ("bulk-2", "task.updated")]
    assert [(d["event_id"], d["consumer"]) for d in dead_letters(engine)] == [("bad", "audit-sink")]
    assert verified(engine)["ok"] is True


# -- poison ---------------------------------------------------------------------------------------


def _with(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, **changes}


POISON = {
    "not ours": _with(task_event("created"), type="com.example.order.placed.v1"),
    "task data missing a field": _with(task_event("created"), data={"event_type": "created", "task_id": 1}),
    "task id not a number": _with(task_event("created"), data={**task_event("created")["data"], "task_id": "one"}),
    "data contradicts the type": _with(task_event("created"), type="dev.todo.task.deleted.v1"),
    "reminder without remind_at": _with(reminder_event(), data={"task_id": 1, "title": "t", "user_id": "alice"}),
    "bad event time": _with(task_event("created"), time="yesterday"),
    # What the database cannot store would otherwise fail, and be redelivered, forever.
    "NaN in the task": _with(task_event("created"), data={
        **task_event("created")["data"], "task_data": {"id": 1, "estimate": float("nan")}}),
    "NUL in the user id": _with(task_event("created"), data={**task_event("created")["data"], "user_id": "al\x00ice"}),
    "lone surrogate in the task": _with(task_event("created"), data={
        **task_event("created")["data"], "task_data": {"id": 1, "title": "half \ud800 a pair"}}),
    "event id longer than any column": _with(task_event("created"), id="x" * 256),
    "task id beyond 64 bits": _with(task_event("created"), data={**task_event("created")["data"], "task_id": 2**63}),
    "changes not from and to": _with(task_event("updated"), data={**task_event("updated")["data"],
                                                                  "changes": {"title": "paid"}}),
    "task version not a number": _with(task_event("updated"), data={
        **task_event("updated")["data"], "task_data": {**task_event("updated")["data"]["task_data"], "version": "2"}}),
}


@pytest.mark.parametrize("case", POISON)
def test_a_poison_event_is_dead_lettered_with_its_reason_in_dapr_form(sink: TestClient, engine: Engine,
                                                                      case: str) -> None:
    response = sink.post("/events", content=json.dumps(POISON[case]), headers=STRUCTURED)
    assert response.status_code == 200
    assert response.json()["status"] == "SUCCESS"
    assert entries(engine) == []
    (letter,) = dead_letters(engine)
    assert letter["consumer"] == "audit-sink" and letter["reason"].startswith("audit-sink: ")
    assert letter["event_id"] == POISON[case]["id"][:255] and letter["attempts"] == 1


@pytest.mark.parametrize("case", ["not ours", "task data missing a field", "reminder without remind_at"])
def test_a_poison_event_is_refused_in_knative_form_with_400(sink: TestClient, engine: Engine, case: str) -> None:
    headers, body = binary(POISON[case])
    response = sink.post("/events", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["status"] == "DROP"
    assert response.json()["reason"] == dead_letters(engine)[0]["reason"]  # what Knative's sink keeps
    assert entries(engine) == []


def test_a_body_that_is_no_cloudevent_is_dead_lettered_as_it_came(sink: TestClient, engine: Engine) -> None:
    response = sink.post("/events", content=b'{"hello": "world"}', headers=STRUCTURED)
    assert (response.status_code, response.json()["status"]) == (200, "SUCCESS")
    assert entries(engine) == []
    assert [(d["event"], d["reason"]) for d in dead_letters(engine)] == [
        ({"hello": "world"}, "audit-sink: the body is not a CloudEvent")]


# -- the database guards the trail ----------------------------------------------------------------


def test_the_database_refuses_every_way_of_rewriting_an_audit_entry(sink: TestClient, engine: Engine) -> None:
    deliver(sink, task_event("created"))
    before = entries(engine)
    columns = ", ".join(c.name for c in audit_log.columns)
    forged = columns.replace("actor", "'mallory'")
    statements: list[Any] = [
        update(audit_log).values(actor="mallory"),
        update(audit_log).where(audit_log.c.seq == 1).values(changes=None),
        delete(audit_log).where(audit_log.c.seq == 1),
        delete(audit_log),
        delete(audit_chain_heads),
        # An upsert on the entry's key is an UPDATE in disguise, on both engines.
        text(f"INSERT INTO audit_log ({columns}) SELECT {columns} FROM audit_log WHERE seq = 1 "
             "ON CONFLICT (seq) DO UPDATE SET actor = 'mallory'"),
    ]
    if engine.dialect.name == "postgresql":
        statements += [text("TRUNCATE audit_log"), text("TRUNCATE audit_chain_heads"),
                       text("TRUNCATE audit_log, audit_chain_heads CASCADE"),
                       text("MERGE INTO audit_log USING (SELECT 1 AS seq) AS s ON audit_log.seq = s.seq "
                            "WHEN MATCHED THEN UPDATE SET actor = 'mallory'"),
                       text("MERGE INTO audit_log USING (SELECT 1 AS seq) AS s ON audit_log.seq = s.seq "
                            "WHEN MATCHED THEN DELETE")]
    else:  # REPLACE deletes the conflicting row without firing DELETE triggers (recursive_triggers off)
        statements += [text(f"INSERT OR REPLACE INTO audit_log ({columns}) SELECT {forged} FROM audit_log "
                            "WHERE seq = 1"),
                       text(f"REPLACE INTO audit_log ({columns}) SELECT {forged} FROM audit_log WHERE seq = 1"),
                       text("INSERT OR REPLACE INTO audit_chain_heads (chain, length, hash, updated_at) "
                            "SELECT chain, 0, hash, updated_at FROM audit_chain_heads"),
                       text("UPDATE OR REPLACE audit_log SET seq = 1 WHERE seq = 1")]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    assert entries(engine) == before
    assert verified(engine)["ok"] is True
    deliver(sink, task_event("updated", version=2))  # appending still works past the guards
    assert [e.seq for e in entries(engine)] == [1, 2] and verified(engine)["ok"] is True


# -- tampering is detected ------------------------------------------------------------------------


def _edit(conn: Connection) -> None:
    conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(actor="mallory"))


def _edit_and_rehash(conn: Connection) -> None:
    row = conn.execute(select(audit_log).where(audit_log.c.seq == 2)).mappings().one()
    forged = AuditEntry(**{**row, "changes": {"title": {"from": "x", "to": "y"}}})
    conn.execute(update(audit_log).where(audit_log.c.seq == 2)
                 .values(changes=forged.changes, hash=forged.computed_hash()))


def _delete(conn: Connection) -> None:
    conn.execute(delete(audit_log).where(audit_log.c.seq == 2))


def _reorder(conn: Connection) -> None:
    for old, new in ((2, 1000), (3, 2), (1000, 3)):
        conn.execute(update(audit_log).where(audit_log.c.seq == old).values(seq=new))


def _truncate(conn: Connection) -> None:
    conn.execute(delete(audit_log).where(audit_log.c.seq >= 4))


TAMPERING = {"edited": (_edit, 2), "edited and rehashed": (_edit_and_rehash, 3), "deleted": (_delete, 2),
             "reordered": (_reorder, 2), "truncated": (_truncate, 4)}


@pytest.mark.parametrize("case", TAMPERING)
def test_tampering_is_detected_at_the_first_bad_seq(
        sink: TestClient, engine: Engine, auditor: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], case: str) -> None:
    for n in range(5):
        deliver(sink, task_event("created" if n == 0 else "updated", version=n + 1, title=f"title {n}"))
    assert summary(auditor.get("/audit/verify").json()) == {"ok": True, "checked": 5, "first_bad_seq": None}
    tamper, first_bad = TAMPERING[case]
    with tampering(engine) as conn:
        tamper(conn)
    result = auditor.get("/audit/verify").json()
    assert result["ok"] is False
    assert result["first_bad_seq"] == first_bad
    assert run_cli(monkeypatch, settings, "audit", "verify") == 1
    assert json.loads(capsys.readouterr().out) == result


# Values no entry can have, each as an engine lets a tamperer store it at seq 3.
MALFORMED = {
    "a time that is no time": {"sqlite": "occurred_at = 'not a time'", "postgresql": "occurred_at = 'infinity'"},
    "JSON that does not read back": {"sqlite": "changes = '{broken'", "postgresql": "changes = '1e400'"},
    "a number that is none": {"sqlite": "seq = 'three'", "postgresql": "state = '[1e999]'"},
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_entry_is_reported_as_the_first_bad_one_and_nothing_crashes(
        sink: TestClient, engine: Engine, auditor: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], case: str) -> None:
    for n in range(5):
        deliver(sink, task_event("created" if n == 0 else "updated", version=n + 1, title=f"title {n}"))
    with tampering(engine) as conn:
        conn.execute(text(f"UPDATE audit_log SET {MALFORMED[case][engine.dialect.name]} WHERE seq = 3"))
    response = auditor.get("/audit/verify")
    assert response.status_code == 200, response.text
    assert summary(response.json()) == {"ok": False, "checked": 3, "first_bad_seq": 3}
    assert run_cli(monkeypatch, settings, "audit", "verify") == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == response.json() and "Traceback" not in err


def test_a_task_event_whose_text_holds_a_nul_is_audited_as_it_is(sink: TestClient, engine: Engine) -> None:
    """A task written before writers refused NUL (SQLite kept it) keeps its history: only what the trail
    could not store is poison, and a NUL inside the task is stored (escaped in JSON) on both engines."""
    created = task_event("created", title="pay\x00rent")
    deliver(sink, created)
    deliver(sink, task_event("updated", title="pay rent", version=2))
    trail = entries(engine)
    assert [e.action for e in trail] == ["task.created", "task.updated"]
    assert trail[0].state["title"] == "pay\x00rent"
    assert trail[1].changes["title"] == {"from": "pay\x00rent", "to": "pay rent"}
    assert verified(engine)["ok"] is True


@pytest.mark.parametrize(("field", "value"), [
    ("title", "pay\x00rent"), ("description", "line\x00two"), ("tags", ["ok", "b\x00d"]),
    ("title", "half \ud800 a pair"),
])
def test_text_the_trail_could_not_keep_is_refused_at_the_write(
        alice: Api, engine: Engine, field: str, value: Any) -> None:
    body = {"title": "fine", field: value}
    response = alice.post("/tasks", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert alice.get("/tasks").json()["items"] == []
    task = alice.post("/tasks", json={"title": "fine"}).json()
    patched = alice.patch(f"/tasks/{task['id']}", content=json.dumps({field: value}),
                          headers={"content-type": "application/merge-patch+json"})
    assert patched.status_code == 422, patched.text
    assert alice.get(f"/tasks/{task['id']}").json()["version"] == 1
    with engine.connect() as conn:  # no event of a refused write: nothing the trail would have lost
        assert conn.execute(select(func.count()).select_from(outbox).where(outbox.c.topic == "task-events")
                            ).scalar() == 1


def test_the_cli_prints_the_verification_and_exits_0_when_the_chain_holds(
        sink: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    deliver(sink, task_event("created"))
    deliver(sink, reminder_event())
    assert run_cli(monkeypatch, settings, "audit", "verify") == 0
    assert summary(json.loads(capsys.readouterr().out)) == {"ok": True, "checked": 2, "first_bad_seq": None}


# -- over HTTP ------------------------------------------------------------------------------------


def test_an_http_task_change_through_the_gateway_ends_up_in_the_audit_log(
        runtime: Any, alice: Api, auditor: Api) -> None:
    task = alice.post("/tasks", json={"title": "pay rent", "tags": ["home"]}).json()
    alice.patch(f"/tasks/{task['id']}", json={"title": "pay the rent"})
    alice.post(f"/tasks/{task['id']}/complete")
    runtime.relay.drain()  # the in-process bus delivers to audit-sink as the relay publishes
    page = auditor.get("/audit", params={"task_id": task["id"]}).json()
    assert [e["action"] for e in page["items"]] == ["task.created", "task.updated", "task.completed"]
    assert [e["source"] for e in page["items"]] == ["/todo/functions/create-task"] + ["/todo/functions/update-task"] * 2
    assert page["items"][0]["changes"]["tags"] == ["home"]
    assert page["items"][1]["changes"]["title"] == {"from": "pay rent", "to": "pay the rent"}
    assert {e["actor"] for e in page["items"]} == {"alice"}
    assert summary(auditor.get("/audit/verify").json()) == {"ok": True, "checked": 3, "first_bad_seq": None}


def test_history_is_the_owners_alone_and_outlives_the_task(runtime: Any, alice: Api, bob: Api) -> None:
    task = alice.post("/tasks", json={"title": "secret plans"}).json()
    alice.patch(f"/tasks/{task['id']}", json={"priority": "high"})
    alice.delete(f"/tasks/{task['id']}")
    runtime.relay.drain()
    response = alice.get(f"/tasks/{task['id']}/history")
    assert response.status_code == 200, response.text
    history = response.json()
    assert [e["action"] for e in history["items"]] == ["task.created", "task.updated", "task.deleted"]
    assert history["items"][1]["changes"]["priority"] == {"from": "medium", "to": "high"}
    assert history["next_cursor"] is None
    for response in (bob.get(f"/tasks/{task['id']}/history"), alice.get("/tasks/999/history"),
                     alice.get("/tasks/abc/history")):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert "secret" not in response.text


def test_the_audit_endpoints_need_the_auditor_or_admin_role(
        sink: TestClient, client: TestClient, alice: Api, token) -> None:  # type: ignore[no-untyped-def]
    deliver(sink, task_event("created"))
    for path in ("/audit", "/audit/verify"):
        response = alice.get(path)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Forbidden"
        assert client.get(path).status_code == 401
        for roles in (["auditor"], ["admin"], ["user", "auditor"]):
            assert Api(client, token("dave", roles)).get(path).status_code == 200


def test_the_audit_listing_filters_and_pages_by_seq(sink: TestClient, auditor: Api) -> None:
    deliver(sink, task_event("created", task_id=1, user="alice", at=T0))
    deliver(sink, task_event("created", task_id=2, user="bob", at=T0 + timedelta(days=1)))
    deliver(sink, task_event("updated", task_id=1, user="alice", version=2, at=T0 + timedelta(days=2)))
    deliver(sink, reminder_event(task_id=2, user="bob", at=T0 + timedelta(days=3)))
    deliver(sink, task_event("deleted", task_id=1, user="alice", version=2, at=T0 + timedelta(days=4)))

    def seqs(**params: Any) -> list[int]:
        response = auditor.get("/audit", params=params)
        assert response.status_code == 200, response.text
        return [e["seq"] for e in response.json()["items"]]

    assert seqs() == [1, 2, 3, 4, 5]
    assert seqs(user_id="bob") == [2, 4]
    assert seqs(task_id=1) == [1, 3, 5]
    assert seqs(action="task.created") == [1, 2]
    assert seqs(since="2026-01-02T09:00:00Z") == [2, 3, 4, 5]
    assert seqs(since="2026-01-02T10:00:00+01:00", until="2026-01-04T09:00:00Z") == [2, 3]
    assert seqs(user_id="alice", action="task.deleted") == [5]

    pages, cursor = [], None
    while True:
        page = auditor.get("/audit", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([e["seq"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[1, 2], [3, 4], [5]]

    for params in ({"limit": 201}, {"limit": 0}, {"since": "2026-01-01T09:00:00"}, {"until": "soon"},
                   {"task_id": "x"}, {"colour": "red"}):
        assert auditor.get("/audit", params=params).status_code == 422, params
    assert auditor.get("/audit", params={"cursor": "not a cursor"}).status_code == 400


# -- arrival order is not commit order ------------------------------------------------------------


def lifecycle(runtime: Runtime, engine: Engine, title: str) -> list[dict[str, Any]]:
    """A task's life as the writers commit it, at fixed times: created with a reminder (v1), retitled
    (v2), completed (v3), retitled while completed (v4), deleted (v4). Its events as the outbox holds them,
    in commit order, from both audited topics; nothing is delivered yet."""
    def ctx(hours: int) -> Context:
        return Context("alice", "update-task", T0 + timedelta(hours=hours))

    def retitle(to: str, hours: int) -> Callable[[Task], Task]:
        return lambda task: task.revise(replace(task.fields, title=to), ctx(hours).now)

    # Due long after the real clock: the gateway's reminder tick runs during the test and would otherwise
    # claim the reminder (a ``reminder.triggered``) between two of these commits.
    fields = TaskFields(title=title, due_at=FAR_FUTURE, reminders=(Reminder(before=timedelta(hours=1)),))
    with engine.connect() as conn:
        after = conn.execute(select(func.coalesce(func.max(outbox.c.id), 0))).scalar_one()
    task_id = tasks_service.create_task(runtime.uow(), ctx(0), fields).id
    tasks_service.change_task(runtime.uow(), ctx(1), task_id, retitle(f"{title}, signed", 1))
    tasks_service.change_task(runtime.uow(), ctx(2), task_id, lambda task: task.complete(ctx(2).now))
    tasks_service.change_task(runtime.uow(), ctx(3), task_id, retitle(f"{title}, signed twice", 3))
    tasks_service.delete_task(runtime.uow(), ctx(4), task_id)
    with engine.connect() as conn:
        return [json.loads(row.payload) for row in conn.execute(
            select(outbox.c.payload).where(outbox.c.id > after, outbox.c.topic.in_(["task-events", "reminders"]))
            .order_by(outbox.c.id))]


def told(history: list[dict[str, Any]], task_id: int) -> list[tuple[Any, ...]]:
    """What a history says, without what differs between two tasks or two deliveries."""
    def same(value: Any) -> Any:
        return json.loads(json.dumps(value).replace(f'"id": {task_id}', '"id": "<task>"'))

    return [(e["action"], same(e["changes"]), same(e["state"]), e["occurred_at"]) for e in history]


def test_a_tasks_history_says_the_same_whatever_order_its_events_arrive_in(
        runtime: Runtime, engine: Engine, sink: TestClient, alice: Api) -> None:
    """Issue 11, defect 2: a broker restart delivered a task's events out of commit order, and the trail
    recorded a deletion before the creation, a reopen that never happened and a second completion."""
    arrivals = {"in order": lambda events: events, "reversed": lambda events: events[::-1],
                "shuffled": lambda events: random.Random(11).sample(events, len(events))}
    histories = {}
    for name, order in arrivals.items():
        events = lifecycle(runtime, engine, "sign the lease")
        assert [e["type"].split(".")[2:4] for e in events][:3] == [["task", "created"], ["reminder", "scheduled"],
                                                                   ["task", "updated"]]
        for event in order(events):
            deliver(sink, event)
        task_id = events[0]["data"]["task_id"]
        response = alice.get(f"/tasks/{task_id}/history")
        assert response.status_code == 200, response.text
        histories[name] = told(response.json()["items"], task_id)
        pages, cursor = [], ""
        while cursor is not None:  # pages of two, from cursor to cursor, read the same in the same order
            page = alice.get(f"/tasks/{task_id}/history", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
            pages += page.json()["items"]
            cursor = page.json()["next_cursor"]
        assert told(pages, task_id) == histories[name]
    in_order = histories["in order"]
    assert [action for action, *_ in in_order] == ["task.created", "reminder.scheduled", "task.updated",
                                                   "task.completed", "task.updated", "task.deleted"]
    assert in_order[4][1]["title"] == {"from": "sign the lease, signed", "to": "sign the lease, signed twice"}
    assert "status" not in in_order[4][1]  # retitled while completed: no reopen
    assert histories["reversed"] == in_order
    assert histories["shuffled"] == in_order
    assert verified(engine)["ok"]
