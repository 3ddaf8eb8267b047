"""Every change commits its CloudEvent with it; the relay publishes it, once or again, never not."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from todo.adapters.outbox import OutboxRelay
from todo.adapters.publishers import InProcessBus, Subscriber
from todo.adapters.tables import outbox
from todo.domain.task import TaskFields
from todo.runtime import Runtime
from todo.service import tasks as service
from todo.service.tasks import Context

from .conftest import Api


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_times = fail_times

        self.requests: list[tuple[str, int]] = []

    def publish_many(self, topic: str, messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("broker unreachable")
        self.requests.append((topic, len(messages)))
        if topic == "task-events":  # each change also numbers a message for push-update (test_push)
            self.events.extend((topic, partition_key, cloud_event) for partition_key, cloud_event in messages)


def rows(engine: Engine, topic: str = "task-events") -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.topic == topic).order_by(outbox.c.id)))


def test_each_change_writes_one_cloudevent_with_the_seed_payload(alice: Api, engine: Engine) -> None:
    task = alice.post("/tasks", json={"title": "t", "tags": ["a"]}).json()
    alice.patch(f"/tasks/{task['id']}", json={"title": "t2"})
    alice.post(f"/tasks/{task['id']}/complete")
    alice.post(f"/tasks/{task['id']}/reopen")
    alice.delete(f"/tasks/{task['id']}")
    events = [json.loads(r.payload) for r in rows(engine)]
    assert [e["data"]["event_type"] for e in events] == ["created", "updated", "completed", "updated", "deleted"]
    assert [e["type"] for e in events] == [f"dev.todo.task.{t}.v1"
                                           for t in ("created", "updated", "completed", "updated", "deleted")]
    assert [e["source"] for e in events] == ["/todo/functions/create-task"] + ["/todo/functions/update-task"] * 4
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["subject"] == str(task["id"])
        assert event["datacontenttype"] == "application/json"
        assert uuid.UUID(event["id"])
        assert set(event["data"]) == {"event_type", "task_id", "task_data", "user_id", "timestamp"}
        assert event["data"]["user_id"] == "alice" and event["data"]["task_id"] == task["id"]
    assert events[1]["data"]["task_data"]["title"] == "t2"
    assert events[2]["data"]["task_data"]["status"] == "completed"
    assert len({e["id"] for e in events}) == 5
    assert {r.topic for r in rows(engine)} == {"task-events"}
    assert {r.partition_key for r in rows(engine)} == {"alice"}


def test_a_failed_write_leaves_no_event(alice: Api, engine: Engine) -> None:
    alice.post("/tasks", json={"title": ""})
    alice.patch("/tasks/1", json={"title": "x"})
    assert rows(engine) == []


def test_relay_publishes_in_order_and_marks_rows(runtime: Runtime, engine: Engine) -> None:
    ctx = Context("alice", "create-task", datetime.now(UTC))
    for i in range(5):
        service.create_task(runtime.uow(), ctx, TaskFields(title=f"t{i}"))  # committed, relay never told
    recorder = Recorder()
    relay = OutboxRelay(engine, recorder, batch=2)
    assert relay.pending() == 10  # each change: its task event and its push-update message
    assert relay.drain() == 10
    assert [e[2]["data"]["task_data"]["title"] for e in recorder.events] == [f"t{i}" for i in range(5)]
    # One request per topic per batch of two rows (a task event and its push message), not per row.
    assert recorder.requests == [("task-events", 1), ("task-updates", 1)] * 5
    assert relay.pending() == 0 and relay.drain() == 0
    assert all(r.published_at is not None for r in rows(engine))


def test_a_batch_goes_out_as_one_request_per_topic_in_commit_order(runtime: Runtime, engine: Engine) -> None:
    ctx = Context("alice", "create-task", datetime.now(UTC))
    for i in range(7):
        service.create_task(runtime.uow(), ctx, TaskFields(title=f"t{i}"))
    recorder = Recorder()
    assert OutboxRelay(engine, recorder, batch=500).drain() == 14
    assert recorder.requests == [("task-events", 7), ("task-updates", 7)]
    assert [e[2]["data"]["task_data"]["title"] for e in recorder.events] == [f"t{i}" for i in range(7)]
    assert all(r.published_at is not None for r in rows(engine) + rows(engine, "task-updates"))


def test_publish_failure_keeps_rows_and_the_next_sweep_sends_them_with_the_same_ids(
        runtime: Runtime, engine: Engine) -> None:
    ctx = Context("alice", "create-task", datetime.now(UTC))
    for i in range(3):
        service.create_task(runtime.uow(), ctx, TaskFields(title=f"t{i}"))
    ids = [json.loads(r.payload)["id"] for r in rows(engine)]
    recorder = Recorder(fail_times=1)
    relay = OutboxRelay(engine, recorder)
    assert relay.drain() == 0
    assert relay.pending() == 6
    assert rows(engine)[0].attempts == 1 and "broker unreachable" in rows(engine)[0].last_error
    assert relay.drain() == 6
    assert [e[2]["id"] for e in recorder.events] == ids


def test_crash_after_publish_before_mark_republishes_the_same_event(runtime: Runtime, engine: Engine) -> None:
    service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), TaskFields(title="t"))
    recorder = Recorder()
    OutboxRelay(engine, recorder).drain()
    with engine.begin() as conn:  # as if the process died before its UPDATE committed
        conn.execute(update(outbox).values(published_at=None))
    OutboxRelay(engine, recorder).drain()
    assert len(recorder.events) == 2
    assert recorder.events[0][2] == recorder.events[1][2]  # same id: the consumer drops the second


def test_http_write_is_published_right_after_commit(runtime: Runtime, alice: Api, engine: Engine) -> None:
    received: list[dict[str, Any]] = []

    async def on_event(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return JSONResponse({"status": "SUCCESS"})

    runtime.bus.subscribe("task-events", Subscriber("probe", Starlette(routes=[
        Route("/events", on_event, methods=["POST"])]), "/events"))
    # The test settings sweep once an hour and the start-up drain runs once: past the first write,
    # only the kick after each commit can deliver in time.
    for count, title in enumerate(["ping", "pong", "pang"], start=1):
        alice.post("/tasks", json={"title": title})
        deadline = time.monotonic() + 10
        while len(received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [e["data"]["task_data"]["title"] for e in received] == ["ping", "pong", "pang"]
    deadline = time.monotonic() + 10  # the task events are out; their push messages follow them
    while runtime.relay.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.relay.pending() == 0


@pytest.mark.parametrize(("status", "body", "delivered", "dead"), [
    (200, {"status": "SUCCESS"}, True, False),
    (200, {"status": "DROP"}, True, True),
    (404, {}, True, True),
    (500, {}, False, False),
    (200, {"status": "RETRY"}, False, False),
])
def test_in_process_bus_reads_subscriber_answers_as_dapr_does(
        runtime: Runtime, engine: Engine, status: int, body: dict[str, str], delivered: bool, dead: bool) -> None:
    async def subscriber(request: Request) -> Response:
        await request.body()
        return JSONResponse(body, status_code=status)

    bus = InProcessBus()
    bus.subscribe("task-events", Subscriber("probe", Starlette(routes=[Route("/", subscriber, methods=["POST"])])))
    service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), TaskFields(title="t"))
    relay = OutboxRelay(engine, bus)
    relay.drain()
    assert (relay.pending() == 0) is delivered
    assert bool(bus.dead_letters) is dead
