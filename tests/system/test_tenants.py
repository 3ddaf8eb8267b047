"""One tenant cannot degrade another, on the real stack: Kafka, a daprd per function, PostgreSQL.

User A plants each kind of poison the hostile-input probe found (issue 10), on every partition of
task-events, so that whichever partition B's events hash to holds A's poison ahead of them. B's create →
audit entry, completion → next instance and WebSocket push all still happen within 15 s, and each of B's
POST /tasks answers within 5 s throughout (functional deadlines of the test, not a benchmark). A's
poison ends on task-events.dlq as records that name the consumer and the reason.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from sqlalchemy import create_engine, select

from todo.adapters.tables import dead_letters
from todo.service.events import DEAD_LETTER_TYPE
from todo_dev.stack import Stack

from .conftest import cloud_events, read_topic
from .test_consumers import audit_rows
from .test_push import open_socket

pytestmark = pytest.mark.system
DEADLINE = 15.0
ANSWER = 5.0
DAILY = {"timezone": "America/New_York", "recurrence": {"rrule": "FREQ=DAILY"}}
STRUCTURED = [("content-type", "application/cloudevents+json")]


def completion(task: dict[str, Any], user: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = {**task, "status": "completed", "completed_at": now, "version": task["version"] + 1, **changes}
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todo/functions/update-task",
            "type": "dev.todo.task.completed.v1", "subject": str(task["id"]), "time": now,
            "datacontenttype": "application/json", "partitionkey": user,
            "data": {"event_type": "completed", "task_id": task["id"], "task_data": data, "user_id": user,
                     "timestamp": now}}


def on_every_partition(stack: Stack, user: str, make: Callable[[], dict[str, Any] | bytes]) -> list[str]:
    """Produce one fresh event per partition of task-events; returns their ids."""
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap})
    partitions = producer.list_topics("task-events", timeout=10).topics["task-events"].partitions
    ids = []
    for partition in partitions:
        event = make()
        if isinstance(event, dict):
            ids.append(event["id"])
        value = event if isinstance(event, bytes) else json.dumps(event).encode()
        producer.produce("task-events", value=value, key=user, partition=partition, headers=STRUCTURED)
    assert producer.flush(10) == 0
    return ids


def within(seconds: float, check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds:.1f} s")
        time.sleep(0.1)


def test_one_users_poison_delays_no_other_users_effects_on_the_real_stack(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    a, b = f"{user}-a", f"{user}-b"
    series = api("POST", "/tasks", a, json={"title": "a's series", "due_at": "2027-03-12T16:00:00Z", **DAILY}).json()
    with open_socket(stack.ports("push-update").app, b, since=0) as socket:
        # Found 1: a recurring task due 0001-01-01, completed. The edge refuses it now; the completion comes
        # hand-made, on a series of its own (the consumer ends that series: a due date out of range).
        dawn = api("POST", "/tasks", a, json={"title": "dawn", "due_at": "0001-01-01T00:00:00Z", **DAILY})
        assert dawn.status_code == 422, dawn.text
        dawn_series = api("POST", "/tasks", a, json={"title": "dawn's series", "due_at": "2027-03-12T16:00:00Z",
                                                     **DAILY}).json()
        on_every_partition(stack, a, lambda: completion(dawn_series, a, due_at="0001-01-01T00:00:00Z"))
        # An event on-task-event raises on, every attempt: an occurrence past the column's range.
        raising = on_every_partition(
            stack, a, lambda: completion(series, a, series={**series["series"], "occurrence": 2**63 - 1}))
        # Malformed payloads straight onto the topic.
        malformed = on_every_partition(
            stack, a, lambda: {**completion(series, a), "data": {"event_type": "completed", "task_id": "one"}})
        on_every_partition(stack, a, lambda: b"{not a cloudevent")
        # Found 4: a NUL in a field is refused at the write.
        nul = api("POST", "/tasks", a, json={"title": "a\u0000b"})  # sent as the JSON escape \u0000
        assert nul.status_code == 422, nul.text

        started = time.monotonic()
        created = api("POST", "/tasks", b, json={"title": "b's task"}, timeout=ANSWER)
        assert created.status_code == 201
        mine = api("POST", "/tasks", b, json={"title": "b's series", "due_at": "2027-03-12T16:00:00Z", **DAILY},
                   timeout=ANSWER).json()
        assert api("POST", f"/tasks/{mine['id']}/complete", b, timeout=ANSWER).status_code == 200
        for n in range(5):  # B keeps writing while A's poison goes through
            assert api("POST", "/tasks", b, json={"title": f"b {n}"}, timeout=ANSWER).status_code == 201

        def left() -> float:
            return DEADLINE - (time.monotonic() - started)

        within(left(), lambda: any(r.task_id == created.json()["id"] for r in audit_rows(stack, actor=b)),
               "b's create in the audit trail")
        within(left(), lambda: any(t["series"] == {"id": mine["series"]["id"], "occurrence": 2}
                                   for t in api("GET", "/tasks", b).json()["items"]), "b's next instance")
        pushed: list[dict[str, Any]] = []

        def pushed_created() -> bool:
            with contextlib.suppress(TimeoutError):
                pushed.append(json.loads(socket.recv(timeout=0.5)))
            return any(m.get("type") == "task.created" and m["task"]["id"] == created.json()["id"] for m in pushed)

        within(left(), pushed_created, "b's change on the WebSocket")

    # A's poison was settled as dead letters that say who gave up and why: rows, and records on the DLQ topic.
    def kept() -> list[Any]:
        engine = create_engine(stack.database_url)
        try:
            with engine.connect() as conn:
                rows = list(conn.execute(select(dead_letters).where(
                    dead_letters.c.event_id.in_(raising + malformed))))
        finally:
            engine.dispose()
        return rows if len(rows) >= len(raising) + 2 * len(malformed) else []

    rows = within(60, kept, "a's poison in dead_letters")
    assert {(r.consumer, r.attempts) for r in rows if r.event_id in raising} == {("on-task-event", 3)}
    assert {r.consumer for r in rows if r.event_id in malformed} == {"on-task-event", "audit-sink"}

    def recorded(records: list[Any]) -> bool:
        found = {e["data"]["event"]["id"] for e in cloud_events(records)
                 if e.get("type") == DEAD_LETTER_TYPE and isinstance(e["data"].get("event"), dict)}
        return set(raising) <= found

    records = [e for e in cloud_events(read_topic(stack, "task-events.dlq", recorded))
               if e.get("type") == DEAD_LETTER_TYPE and isinstance(e["data"].get("event"), dict)
               and e["data"]["event"]["id"] in raising]
    assert records and all(r["data"]["consumer"] == "on-task-event" and r["data"]["attempts"] == 3
                           and r["data"]["topic"] == "task-events" and "Error" in r["data"]["reason"]
                           for r in records)
