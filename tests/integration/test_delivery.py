"""The delivery contract embedded, on both engines: one user's poison is dead-lettered with its reason, and
every other event goes on taking effect (issue 10, found 1)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from todo import cli
from todo.adapters.dead_letters import SqlDeadLetters
from todo.adapters.tables import task_series
from todo.domain.recurrence import Schedule
from todo.runtime import Runtime
from todo.service.events import OutgoingEvent
from todo.settings import Settings, get_settings

from .conftest import Api

DAILY = {"due_at": "2027-03-12T16:00:00Z", "timezone": "America/New_York", "recurrence": {"rrule": "FREQ=DAILY"}}


def recurring(api: Api, title: str) -> dict[str, Any]:
    response = api.post("/tasks", json={"title": title, **DAILY})
    assert response.status_code == 201, response.text
    return dict(response.json())


def completion(task: dict[str, Any], user: str, **changes: Any) -> dict[str, Any]:
    """The CloudEvent update-task publishes when ``task`` is completed, with ``changes`` to its data."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = {**task, "status": "completed", "completed_at": now, "version": task["version"] + 1, **changes}
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todo/functions/update-task",
            "type": "dev.todo.task.completed.v1", "subject": str(task["id"]), "time": now,
            "datacontenttype": "application/json", "partitionkey": user,
            "data": {"event_type": "completed", "task_id": task["id"], "task_data": data, "user_id": user,
                     "timestamp": now}}


def plant(runtime: Runtime, event: dict[str, Any], user: str) -> None:
    """Put a hand-made event on task-events, as a broken or hostile producer would."""
    with runtime.uow() as uow:
        uow.outbox.add([OutgoingEvent("task-events", user, event)], datetime.now(UTC))
        uow.commit()


def letters(engine: Engine, consumer: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return SqlDeadLetters(conn).latest(consumer=consumer)


def settled(runtime: Runtime) -> bool:
    """Drained until nothing is pending: what the consumers' effects publish goes out too (a few rounds)."""
    for _ in range(5):
        runtime.relay.drain()
        if runtime.relay.pending() == 0:
            return True
    return False


def occurrences(api: Api) -> list[int]:
    return sorted(t["series"]["occurrence"] for t in api.get("/tasks").json()["items"] if t["series"])


POISON: dict[str, Any] = {
    # The store refuses the next instance's number (beyond the column's range): the consumer raises each time.
    "an occurrence no column holds": lambda t, u: completion(t, u, series={**t["series"], "occurrence": 2**63 - 1}),
    "a payload of the wrong shape": lambda t, u: {**completion(t, u), "data": {"event_type": "completed"}},
}


@pytest.mark.parametrize("case", POISON)
def test_a_users_poison_event_is_dead_lettered_and_the_next_users_events_take_effect(
        runtime: Runtime, engine: Engine, alice: Api, bob: Api, case: str) -> None:
    poison = POISON[case](recurring(alice, "alice's"), "alice")
    plant(runtime, poison, "alice")
    mine = recurring(bob, "bob's")
    assert bob.post(f"/tasks/{mine['id']}/complete").status_code == 200
    runtime.relay.drain()
    assert occurrences(bob) == [2]  # bob's completion took effect behind alice's poison
    assert occurrences(alice) == [1]
    (letter,) = letters(engine, "on-task-event")
    assert letter["event_id"] == poison["id"] and letter["topic"] == "task-events"
    assert letter["reason"].startswith("on-task-event: ")
    assert letter["attempts"] == (3 if case == "an occurrence no column holds" else 1)
    assert letter["event"]["data"] == poison["data"]
    assert settled(runtime)  # nothing is left stuck behind the poison


def test_a_recurring_task_due_in_year_one_completed_holds_up_nobody(
        runtime: Runtime, engine: Engine, alice: Api, bob: Api) -> None:
    """Found 1: its next instance cannot be computed (America/New_York before year 1). Whatever the recurrence
    makes of it (an OverflowError today: poison after its local attempts), it is settled and the stream goes on."""
    task = recurring(alice, "from the dawn of time")
    poison = completion(task, "alice", due_at="0001-01-01T00:00:00Z")
    plant(runtime, poison, "alice")
    mine = recurring(bob, "bob's")
    bob.post(f"/tasks/{mine['id']}/complete")
    runtime.relay.drain()
    assert occurrences(bob) == [2]
    assert occurrences(alice) == [1]
    with engine.connect() as conn:
        ended = conn.execute(select(task_series.c.ended_at).where(task_series.c.id == task["series"]["id"])).scalar()
    dead = [d["event_id"] for d in letters(engine, "on-task-event")]
    assert dead == [poison["id"]] or ended is not None  # dead-lettered, or the series ended: never stuck
    assert settled(runtime)  # nothing is left stuck behind the poison


def test_todo_dead_letters_lists_them_newest_first_with_their_reason(
        runtime: Runtime, engine: Engine, alice: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    task = recurring(alice, "a")
    first, second = (completion(task, "alice", series={**task["series"], "occurrence": 2**63 - 1}),
                     {**completion(task, "alice"), "data": {"nope": "al\x00ice"}})
    for event in (first, second):
        plant(runtime, event, "alice")
    runtime.relay.drain()
    monkeypatch.setenv("TODO_DATA_DIR", str(settings.data_dir))
    if settings.database_url is None:
        monkeypatch.delenv("TODO_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("TODO_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("TODO_DATABASE_SSLMODE", settings.database_sslmode)  # the test server: no TLS
    get_settings.cache_clear()
    try:
        assert cli.main(["dead-letters", "--consumer", "on-task-event"]) == 0
    finally:
        get_settings.cache_clear()
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["event_id"] for p in printed] == [second["id"], first["id"]]
    assert [p["attempts"] for p in printed] == [1, 3]
    assert printed[0]["event"]["data"] == {"nope": "al\x00ice"}  # kept as it came, NUL and all
    assert all(p["consumer"] == "on-task-event" and p["reason"] for p in printed)


def test_the_next_due_date_is_computed_while_the_consumer_holds_no_lock(
        runtime: Runtime, engine: Engine, alice: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """However long a rule takes to evaluate, no writer waits for it (found 2: a 55 s evaluation held
    SQLite's only write lock and other users' writes failed): the series row and, on SQLite, the
    database are free while on-task-event computes the next instance."""
    task = recurring(alice, "daily")
    series_id = task["series"]["id"]
    free: list[bool] = []
    original = Schedule.next_instance

    def next_instance(self: Schedule, *args: Any) -> Any:
        free.append(_unlocked(engine, series_id))
        return original(self, *args)

    monkeypatch.setattr(Schedule, "next_instance", next_instance)
    assert alice.post(f"/tasks/{task['id']}/complete").status_code == 200
    assert settled(runtime)
    assert occurrences(alice) == [2]
    assert free == [True]


def _unlocked(engine: Engine, series_id: int) -> bool:
    """Could another connection write right now (SQLite), or lock the series row (PostgreSQL)?"""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        assert database is not None
        probe = sqlite3.connect(database, timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
    with engine.connect() as conn:
        try:
            conn.execute(text("SELECT id FROM task_series WHERE id = :id FOR UPDATE NOWAIT"), {"id": series_id})
            return True
        except DBAPIError:
            return False
