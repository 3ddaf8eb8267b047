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

from .conftest import cloud_events, eventually, produce, read_topic

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


def test_a_history_says_the_same_when_kafka_delivers_its_events_in_reverse(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    """Issue 11, defect 2, made deterministic: a task's real events, as the writers published them, are
    put on its partition again in reverse order for a twin task of another user (new ids), so that
    audit-sink meets the deletion first and each update before the one it follows."""
    task = api("POST", "/tasks", user, json={"title": "sign the lease"}).json()
    path = f"/tasks/{task['id']}"
    api("PATCH", path, user, json={"title": "sign the lease, signed"})
    api("POST", f"{path}/complete", user)
    api("PATCH", path, user, json={"title": "sign the lease, signed twice"})  # still completed
    assert api("DELETE", path, user).status_code == 204

    def history(owner: str, task_id: int) -> list[dict[str, Any]]:
        response = api("GET", f"/tasks/{task_id}/history", owner)
        assert response.status_code == 200 and len(response.json()["items"]) == 5, response.text
        return list(response.json()["items"])

    in_order = eventually(lambda: history(user, task["id"]), timeout=90)

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        events = {e["id"]: e for e in cloud_events(records) if e.get("subject") == str(task["id"])
                  and (e.get("data") or {}).get("user_id") == user}  # a republished record is one event
        return list(events.values()) if len(events) == 5 else []

    published = mine(read_topic(stack, "task-events", lambda records: bool(mine(records))))
    assert [e["data"]["event_type"] for e in published] == ["created", "updated", "completed", "updated", "deleted"]
    twin, twin_id = f"{user}-twin", 20_000_000 + int(uuid.uuid4().int % 1_000_000)
    for event in reversed(published):
        copy = json.loads(json.dumps(event))
        copy |= {"id": str(uuid.uuid4()), "subject": str(twin_id), "partitionkey": twin}
        copy["data"] |= {"task_id": twin_id, "user_id": twin}
        copy["data"]["task_data"]["id"] = twin_id
        produce(stack, "task-events", json.dumps(copy).encode(), key=twin,
                headers={"content-type": "application/cloudevents+json"})
    reversed_ = eventually(lambda: history(twin, twin_id), timeout=90)

    def told(items: list[dict[str, Any]], task_id: int) -> list[Any]:
        same = json.dumps([[e["action"], e["changes"], e["state"], e["occurred_at"], e["task_version"]]
                           for e in items])
        return list(json.loads(same.replace(f'"id": {task_id}', '"id": "<task>"')))

    assert [e["action"] for e in reversed_] == ["task.created", "task.updated", "task.completed", "task.updated",
                                                "task.deleted"]
    assert told(reversed_, twin_id) == told(in_order, task["id"])
    assert "status" not in in_order[3]["changes"]  # retitled while completed: no reopen
