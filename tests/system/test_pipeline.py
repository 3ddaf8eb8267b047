"""HTTP → PostgreSQL + outbox → daprd → Kafka: what really lands on the topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select

from todo.adapters.tables import outbox
from todo_dev.stack import Stack

from .conftest import cloud_events, read_topic

pytestmark = pytest.mark.system


def test_every_change_lands_on_task_events_as_our_cloudevent(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    task = api("POST", "/tasks", user, json={"title": "ship it", "tags": ["release"]}).json()
    assert api("PATCH", f"/tasks/{task['id']}", user, json={"priority": "high"}).status_code == 200
    assert api("POST", f"/tasks/{task['id']}/complete", user).status_code == 200
    assert api("DELETE", f"/tasks/{task['id']}", user).status_code == 204

    def mine(records: list[Any]) -> list[dict[str, Any]]:
        return [e for e in cloud_events(records) if e.get("data", {}).get("user_id") == user]

    records = read_topic(stack, "task-events", lambda rs: len(mine(rs)) >= 4)
    events = mine(records)
    assert [e["data"]["event_type"] for e in events] == ["created", "updated", "completed", "deleted"]
    assert [e["type"] for e in events] == ["dev.todo.task.created.v1", "dev.todo.task.updated.v1",
                                           "dev.todo.task.completed.v1", "dev.todo.task.deleted.v1"]
    assert {e["subject"] for e in events} == {str(task["id"])}

    engine = create_engine(stack.database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(outbox.c.event_id, outbox.c.published_at).order_by(outbox.c.id)).all()
    engine.dispose()
    published = {r.event_id for r in rows if r.published_at is not None}
    assert {e["id"] for e in events} <= published  # the id on the wire is the id written with the change

    mine_records = [r for r in records if r.key() == user.encode()]
    assert len(mine_records) == 4  # keyed by user: one user's changes share a partition, in order
    assert len({r.partition() for r in mine_records}) == 1
    headers = dict(mine_records[0].headers() or [])
    assert headers["content-type"] == b"application/cloudevents+json"  # a KafkaSource passes it through
