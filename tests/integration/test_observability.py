"""Metrics and readiness: every function serves them, the public entries refuse them, and the metrics
move as requests and events flow through the embedded system (both engines)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from todo.adapters.outbox import Message, OutboxRelay, Undelivered
from todo.adapters.tables import outbox
from todo.adapters.tables import reminders as reminder_rows
from todo.adapters.unit_of_work import SqlUnitOfWork
from todo.domain.task import Reminder, TaskFields
from todo.gateway import load_function
from todo.proxy import build_proxy_app
from todo.runtime import Runtime
from todo.service import reminders, tasks
from todo.service.tasks import Context
from todo.settings import Settings
from todo_dev import ports

from .conftest import Api

STRUCTURED = {"content-type": "application/cloudevents+json"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(function: TestClient) -> Samples:
    response = function.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def function(client: TestClient, runtime: Runtime) -> Callable[[str], TestClient]:
    """A function's own app on the gateway's runtime, as Prometheus or the kubelet reach it."""
    return lambda name: TestClient(load_function(name, runtime))


def test_neither_public_entry_routes_metrics_or_readiness(client: TestClient) -> None:
    proxy = TestClient(build_proxy_app({"query-tasks": "http://127.0.0.1:9"}))
    for entry in (client, proxy):
        for path in ("/metrics", "/readyz"):
            response = entry.get(path)
            assert response.status_code == 404, (entry, path)
            assert response.headers["content-type"] == "application/problem+json"


def test_a_request_counts_under_its_operation_and_status(function: Callable[[str], TestClient], alice: Api) -> None:
    create = function("create-task")
    before = scrape(create)
    assert alice.post("/tasks", json={"title": "pay rent"}).status_code == 201
    assert alice.post("/tasks", json={"title": ""}).status_code == 422
    after = scrape(create)
    labels = {"function": "create-task", "operation": "createTask"}
    assert value(after, "todo_http_requests_total", **labels, status="201") == \
        value(before, "todo_http_requests_total", **labels, status="201") + 1
    assert value(after, "todo_http_requests_total", **labels, status="422") == \
        value(before, "todo_http_requests_total", **labels, status="422") + 1
    assert value(after, "todo_http_request_duration_seconds_count", **labels) == \
        value(before, "todo_http_request_duration_seconds_count", **labels) + 2


def test_a_change_moves_the_outbox_the_consumers_and_the_audit_chain(
        function: Callable[[str], TestClient], alice: Api, runtime: Runtime) -> None:
    create, sink = function("create-task"), function("audit-sink")
    before_sink, before_create = scrape(sink), scrape(create)
    assert alice.post("/tasks", json={"title": "pay rent"}).status_code == 201
    runtime.relay.drain()  # published (in-process: delivered) before the scrape
    after_sink, after_create = scrape(sink), scrape(create)
    created = {"function": "audit-sink", "topic": "task-events", "type": "dev.todo.task.created.v1"}
    assert value(after_sink, "todo_events_total", **created, outcome="success") == \
        value(before_sink, "todo_events_total", **created, outcome="success") + 1
    assert value(after_sink, "todo_audit_entries_total", function="audit-sink") == \
        value(before_sink, "todo_audit_entries_total", function="audit-sink") + 1
    assert value(after_sink, "todo_audit_chain_length", function="audit-sink") == \
        value(before_sink, "todo_audit_chain_length", function="audit-sink") + 1
    assert value(after_sink, "todo_event_processing_seconds_count", function="audit-sink", topic="task-events") > \
        value(before_sink, "todo_event_processing_seconds_count", function="audit-sink", topic="task-events")
    # The relay of this (shared) runtime published the task and its push message; nothing waits.
    assert value(after_create, "todo_outbox_published_total", function="todo", topic="task-events") == \
        value(before_create, "todo_outbox_published_total", function="todo", topic="task-events") + 1
    assert value(after_create, "todo_outbox_publish_lag_seconds_count", function="todo", topic="task-events") == \
        value(before_create, "todo_outbox_publish_lag_seconds_count", function="todo", topic="task-events") + 1
    assert value(after_create, "todo_outbox_pending", function="create-task") == 0
    assert value(after_create, "todo_outbox_oldest_pending_seconds", function="create-task") == 0


def test_a_redelivered_event_counts_as_a_duplicate_and_garbage_as_poison(
        function: Callable[[str], TestClient], alice: Api, runtime: Runtime, engine: Engine) -> None:
    sink = function("audit-sink")
    assert alice.post("/tasks", json={"title": "pay rent"}).status_code == 201
    runtime.relay.drain()
    with engine.connect() as conn:
        payload = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "task-events")).scalar_one()
    before = scrape(sink)
    assert sink.post("/events", content=payload, headers=STRUCTURED).json()["status"] == "SUCCESS"
    garbage = json.dumps({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/x", "type": "no.such.type",
                          "data": {}})
    sink.post("/events", content=garbage, headers=STRUCTURED)
    after = scrape(sink)
    created = {"function": "audit-sink", "topic": "task-events", "type": "dev.todo.task.created.v1"}
    assert value(after, "todo_events_total", **created, outcome="duplicate") == \
        value(before, "todo_events_total", **created, outcome="duplicate") + 1
    assert value(after, "todo_events_total", **created, outcome="success") == \
        value(before, "todo_events_total", **created, outcome="success")
    poison = {"function": "audit-sink", "type": "other", "outcome": "poison"}
    assert sum(v for (name, labels), v in after.items() if name == "todo_events_total"
               and poison.items() <= dict(labels).items()) == \
        sum(v for (name, labels), v in before.items() if name == "todo_events_total"
            and poison.items() <= dict(labels).items()) + 1


def test_a_function_is_ready_when_its_database_answers(function: Callable[[str], TestClient]) -> None:
    for name in ("create-task", "audit-sink", "push-update"):
        response = function(name).get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ready", "function": name, "checks": {"database": "ok"}}


def test_a_function_whose_database_is_away_is_not_ready_but_alive(settings: Settings) -> None:
    away = Runtime(settings.with_(database_url="postgresql+pg8000://todo@127.0.0.1:9/todo",
                                  database_sslmode="disable"))
    try:
        app = TestClient(load_function("query-tasks", away))
        response = app.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "database: unavailable" in response.json()["detail"]
        assert app.get("/healthz").status_code == 200
    finally:
        away.close()


def test_a_socket_counts_while_open_and_each_message_it_is_sent(
        function: Callable[[str], TestClient], client: TestClient, alice: Api, token: Callable[[str], str],
        runtime: Runtime) -> None:
    push = function("push-update")
    before = scrape(push)
    with client.websocket_connect("/ws", subprotocols=["bearer", token("alice")]) as socket:
        for title in ("first", "second"):
            assert alice.post("/tasks", json={"title": title}).status_code == 201
        assert [socket.receive_json()["seq"] for _ in range(2)] == [1, 2]  # so the hub holds the socket by now
        runtime.relay.drain()  # every change delivered to push-update while the socket is open
        during = scrape(push)
    after = scrape(push)  # the test client has run the socket's handler to its end
    labels = {"function": "push-update"}
    assert value(during, "todo_push_connections", **labels) == value(before, "todo_push_connections", **labels) + 1
    assert value(after, "todo_push_connections", **labels) == value(before, "todo_push_connections", **labels)
    assert value(after, "todo_push_messages_total", **labels) == \
        value(before, "todo_push_messages_total", **labels) + 2
    assert value(after, "todo_push_lag_seconds_count", **labels) == \
        value(before, "todo_push_lag_seconds_count", **labels) + 2
    # Each message is sent once, by one path or the other; which one depends on whether the event came first.
    sent = sum(value(after, "todo_push_send_lag_seconds_count", **labels, path=path) -
               value(before, "todo_push_send_lag_seconds_count", **labels, path=path) for path in ("event", "feed"))
    assert sent == 2


def test_a_reminder_fired_late_is_observed_with_its_lateness_and_its_notification_counted(
        function: Callable[[str], TestClient], runtime: Runtime) -> None:
    remind = function("on-reminder")
    due = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    fields = TaskFields(title="call mum", due_at=due, reminders=(Reminder(before=timedelta(minutes=5)),))
    tasks.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), fields)
    before = scrape(remind)
    late = due - timedelta(minutes=5) + timedelta(seconds=7)  # the scan runs 7 s after the reminder was due
    assert reminders.scan(runtime.uow(), "on-reminder", late) == 1
    with runtime.engine.connect() as conn:
        reminder_id, task_id = conn.execute(select(reminder_rows.c.id, reminder_rows.c.task_id)).one()
    triggered = reminders.Triggered(reminder_id, "alice", task_id, "call mum", due, late - timedelta(seconds=7))
    assert reminders.notify(runtime.uow(), runtime.channels, triggered, late) == {"in_app": True}
    after = scrape(remind)
    labels = {"function": "on-reminder"}
    assert value(after, "todo_reminder_lateness_seconds_count", **labels) == \
        value(before, "todo_reminder_lateness_seconds_count", **labels) + 1
    assert value(after, "todo_reminder_lateness_seconds_sum", **labels) == \
        pytest.approx(value(before, "todo_reminder_lateness_seconds_sum", **labels) + 7)
    # 7 s lies above the 5 s bound TodoRemindersLate reads, below the 10 s one.
    assert value(after, "todo_reminder_lateness_seconds_bucket", **labels, le="5.0") == \
        value(before, "todo_reminder_lateness_seconds_bucket", **labels, le="5.0")
    assert value(after, "todo_reminder_lateness_seconds_bucket", **labels, le="10.0") == \
        value(before, "todo_reminder_lateness_seconds_bucket", **labels, le="10.0") + 1
    sent = {**labels, "channel": "in_app", "outcome": "sent"}
    assert value(after, "todo_notifications_total", **sent) == value(before, "todo_notifications_total", **sent) + 1


def test_a_publish_the_broker_refuses_counts_as_a_failure_and_its_rows_as_pending(
        runtime: Runtime, engine: Engine) -> None:
    # Neither the gateway (its sweep) nor the runtime's relay (after a commit of runtime.uow()) runs here:
    # the refusing relay is the only one to try these rows.
    create = TestClient(load_function("create-task", runtime))
    tasks.create_task(SqlUnitOfWork(engine), Context("alice", "create-task", datetime.now(UTC)), TaskFields(title="t"))
    before = scrape(create)

    class Refusing:
        def publish_many(self, topic: str, messages: Sequence[Message]) -> Sequence[Undelivered]:
            raise ConnectionError("broker unreachable")

    assert OutboxRelay(engine, Refusing(), function="create-task").drain() == 0
    after = scrape(create)
    # The drain gives up at the first refused call (task-events, committed first) until the next one.
    labels = {"function": "create-task", "topic": "task-events"}
    assert value(after, "todo_outbox_publish_failures_total", **labels) == \
        value(before, "todo_outbox_publish_failures_total", **labels) + 1
    assert value(after, "todo_outbox_pending", function="create-task") == 2
    assert value(after, "todo_outbox_oldest_pending_seconds", function="create-task") >= 0


def test_a_function_beside_an_absent_sidecar_is_not_ready(settings: Settings) -> None:
    # TODO_EVENTS=dapr: events go through daprd, so its outbound readiness is part of the function's.
    nobody = ports.test_port(69)  # nothing of this run listens there
    beside = Runtime(settings.with_(events="dapr", dapr_http_port=nobody))
    try:
        response = TestClient(load_function("audit-sink", beside)).get("/readyz")
        assert response.status_code == 503
        assert "sidecar: unavailable" in response.json()["detail"]
        assert "database" not in response.json()["detail"]  # the database answers; only the sidecar is missing
    finally:
        beside.close()


def test_an_event_whose_database_is_away_counts_as_a_retry(
        alice: Api, runtime: Runtime, engine: Engine, settings: Settings) -> None:
    assert alice.post("/tasks", json={"title": "pay rent"}).status_code == 201
    runtime.relay.drain()
    with engine.connect() as conn:
        payload = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "task-events")).scalar_one()
    away = Runtime(settings.with_(database_url="postgresql+pg8000://todo@127.0.0.1:9/todo",
                                  database_sslmode="disable"))
    try:
        sink = TestClient(load_function("audit-sink", away))
        before = scrape(sink)
        response = sink.post("/events", content=payload, headers=STRUCTURED)
        assert (response.status_code, response.json()["status"]) == (500, "RETRY")  # daprd redelivers
        after = scrape(sink)
    finally:
        away.close()
    retried = {"function": "audit-sink", "topic": "task-events", "type": "dev.todo.task.created.v1",
               "outcome": "retry"}
    assert value(after, "todo_events_total", **retried) == value(before, "todo_events_total", **retried) + 1
