"""daprd delivers from Kafka to the event functions: effects land once, poison is dead-lettered."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from todo.adapters.tables import audit_log
from todo_dev.stack import Stack

from .conftest import eventually, produce, read_topic

pytestmark = pytest.mark.system


def audit_rows(stack: Stack, **where: Any) -> list[Any]:
    engine = create_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            stmt = select(audit_log).order_by(audit_log.c.seq)
            for column, value in where.items():
                stmt = stmt.where(audit_log.c[column] == value)
            return list(conn.execute(stmt))
    finally:
        engine.dispose()


def our_event(user: str, task_id: int, title: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    task = {"id": task_id, "title": title, "description": "", "status": "open", "priority": "medium", "tags": [],
            "due_at": None, "timezone": "UTC", "recurrence": None, "reminders": [], "completed_at": None,
            "created_at": now, "updated_at": now, "version": 1}
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todo/functions/create-task",
            "type": "dev.todo.task.created.v1", "subject": str(task_id), "time": now,
            "datacontenttype": "application/json",
            "data": {"event_type": "created", "task_id": task_id, "task_data": task, "user_id": user,
                     "timestamp": now}}


def test_http_changes_are_audited_once_each_through_daprd(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    task = api("POST", "/tasks", user, json={"title": "audited"}).json()
    api("PATCH", f"/tasks/{task['id']}", user, json={"title": "audited twice"})
    api("POST", f"/tasks/{task['id']}/complete", user)

    def three() -> list[Any]:
        rows = audit_rows(stack, actor=user)
        assert len(rows) >= 3
        return rows

    rows = eventually(three, timeout=90)
    assert [r.action for r in rows] == ["task.created", "task.updated", "task.completed"]
    assert len({r.event_id for r in rows}) == 3
    history = api("GET", f"/tasks/{task['id']}/history", user)
    assert history.status_code == 200 and len(history.json()["items"]) == 3


def test_the_same_event_delivered_twice_is_recorded_once(stack: Stack, user: str) -> None:
    event = our_event(user, 10_000_001, "duplicate")
    for _ in range(2):
        produce(stack, "task-events", json.dumps(event).encode(), key=user,
                headers={"content-type": "application/cloudevents+json"})
    follow_up = our_event(user, 10_000_002, "after the duplicate")
    produce(stack, "task-events", json.dumps(follow_up).encode(), key=user,
            headers={"content-type": "application/cloudevents+json"})
    eventually(lambda: len(audit_rows(stack, event_id=follow_up["id"])) == 1, timeout=90)
    assert len(audit_rows(stack, event_id=event["id"])) == 1


def test_a_poison_event_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing(
        stack: Stack, user: str) -> None:
    poison = b'{"specversion": "1.0", "id": "' + user.encode() + b'", "source": "x", "type": "nonsense"}'
    produce(stack, "task-events", poison, key=user, headers={"content-type": "application/cloudevents+json"})
    good = our_event(user, 10_000_003, "after the poison")
    produce(stack, "task-events", json.dumps(good).encode(), key=user,
            headers={"content-type": "application/cloudevents+json"})
    eventually(lambda: len(audit_rows(stack, event_id=good["id"])) == 1, timeout=90)
    dead = read_topic(stack, "task-events.dlq", lambda rs: any(user.encode() in (r.value() or b"") for r in rs))
    assert any(user.encode() in (r.value() or b"") for r in dead)
    assert audit_rows(stack, event_id=user) == []


def test_completing_a_recurring_task_makes_the_next_once_through_kafka_and_daprd(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    first = api("POST", "/tasks", user, json={
        "title": "weekly review", "due_at": "2027-03-12T16:00:00Z", "timezone": "Europe/Paris",
        "recurrence": {"rrule": "FREQ=WEEKLY"}}).json()
    assert api("POST", f"/tasks/{first['id']}/complete", user).status_code == 200

    def next_instance() -> dict[str, Any]:
        items = api("GET", "/tasks", user).json()["items"]
        assert len(items) == 1
        return dict(items[0])

    nxt = eventually(next_instance, timeout=90)
    assert nxt["series"] == {"id": first["series"]["id"], "occurrence": 2}
    assert nxt["due_at"] == "2027-03-19T16:00:00Z"

    completed = [r for r in read_topic(stack, "task-events", lambda rs: any(
        user.encode() in (r.value() or b"") and b'"completed"' in (r.value() or b"") for r in rs))
        if user.encode() in (r.value() or b"") and b'"event_type":"completed"' in (r.value() or b"")]
    for _ in range(2):  # the same completion again: on-task-event has seen it
        produce(stack, "task-events", completed[0].value(), key=user,
                headers={"content-type": "application/cloudevents+json"})
    marker = our_event(user, 10_000_004, "after the redelivery")
    produce(stack, "task-events", json.dumps(marker).encode(), key=user,
            headers={"content-type": "application/cloudevents+json"})
    eventually(lambda: len(audit_rows(stack, event_id=marker["id"])) == 1, timeout=90)
    assert len(api("GET", "/tasks", user).json()["items"]) == 1
