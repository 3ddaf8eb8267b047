"""One trace follows a change inside the embedded system: the request's span, the outbox row's
traceparent, and each consumer's span its child (both engines; the real stack's Jaeger in tests/system)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from todo import tracing
from todo.adapters.tables import outbox
from todo.edge import push
from todo.gateway import load_function
from todo.routes import SUBSCRIPTIONS
from todo.runtime import Runtime

from .conftest import Api


def traceparent(span: ReadableSpan) -> str:
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-{int(span.context.trace_flags):02x}"


def test_a_changes_consumers_are_children_of_its_request_through_the_outbox(
        spans: InMemorySpanExporter, alice: Api, runtime: Runtime, engine: Engine) -> None:
    task = alice.post("/tasks", json={"title": "traced"}).json()
    runtime.relay.drain()
    [request] = [s for s in spans.get_finished_spans() if s.name == "POST /tasks"]
    assert request.attributes is not None and request.attributes["http.route"] == "/tasks"
    with engine.connect() as conn:
        stored = set(conn.execute(select(outbox.c.traceparent)).scalars())
    assert stored == {traceparent(request)}  # the task's event and its push message
    consumers = {s.name.split()[0]: s for s in spans.get_finished_spans() if s.kind.name == "CONSUMER"
                 and s.context.trace_id == request.context.trace_id}
    expected = {s.function for s in SUBSCRIPTIONS if s.topic in ("task-events", "task-updates")}
    assert set(consumers) == expected, (consumers, task)
    for consumer in consumers.values():  # in-process there is no daprd between: the event's context is the parent
        assert consumer.parent is not None and consumer.parent.span_id == request.context.span_id


def test_an_untraced_change_stores_no_trace_context(alice: Api, engine: Engine) -> None:
    assert alice.post("/tasks", json={"title": "not traced"}).status_code == 201
    with engine.connect() as conn:
        assert set(conn.execute(select(outbox.c.traceparent)).scalars()) == {None}


def test_the_socket_send_ends_the_trace_of_the_change_it_pushes(
        spans: InMemorySpanExporter, client: TestClient, alice: Api, token: Callable[[str], str],
        runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    # The feed's poller would send the message too if it woke first; here only the event brings it.
    monkeypatch.setattr(push, "POLL_SECONDS", 3600.0)
    with client.websocket_connect("/ws", subprotocols=["bearer", token("alice")]) as socket:
        assert alice.post("/tasks", json={"title": "pushed"}).status_code == 201
        runtime.relay.drain()
        assert socket.receive_json()["seq"] == 1
    [request] = [s for s in spans.get_finished_spans() if s.name == "POST /tasks"]
    [send] = [s for s in spans.get_finished_spans() if s.name == "push to socket"]
    [consumer] = [s for s in spans.get_finished_spans() if s.name.startswith("push-update ")
                  and s.context.span_id == (send.parent.span_id if send.parent else None)]
    assert send.context.trace_id == consumer.context.trace_id == request.context.trace_id


def test_a_tick_is_not_traced_but_the_reminders_it_fires_start_their_own_trace(
        spans: InMemorySpanExporter, alice: Api, runtime: Runtime, engine: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # daprd ticks on-reminder every second: a trace per tick would bury the changes' traces in Jaeger.
    remind = TestClient(load_function("on-reminder", runtime))
    assert remind.post("/reminder-scan").status_code == 200  # nothing due
    assert spans.get_finished_spans() == ()
    due = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    alice.post("/tasks", json={"title": "call mum", "due_at": due.isoformat(), "reminders": [{"before": "PT1H"}]})
    runtime.relay.drain()
    spans.clear()
    monkeypatch.setattr(runtime, "now", lambda: due)
    assert remind.post("/reminder-scan").status_code == 200
    runtime.relay.drain()
    [trigger] = [s for s in spans.get_finished_spans() if s.parent is None]
    assert trigger.name == "trigger reminders"
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {trigger.context.trace_id}
    assert "on-reminder dev.todo.reminder.triggered.v1" in {s.name for s in spans.get_finished_spans()}
    with engine.connect() as conn:
        [stored] = conn.execute(select(outbox.c.traceparent).where(
            outbox.c.topic == "reminders", outbox.c.payload.contains("reminder.triggered"))).scalars()
    assert stored == traceparent(trigger)


def test_a_statement_is_a_child_of_the_traced_work_that_sends_it_and_no_trace_of_its_own_outside_it(
        spans: InMemorySpanExporter, engine: Engine) -> None:
    # Outside any span (the relay's polling, a migration) a statement would otherwise be a root span: a
    # trace per poll, and a third of P2's throughput spent exporting them (bench T1).
    tracing.instrument_engine(engine)
    with engine.connect() as conn:
        conn.execute(select(outbox.c.id)).all()
        with tracing.span("traced work"):
            conn.execute(select(outbox.c.id).where(outbox.c.id > 0)).all()
        conn.execute(select(outbox.c.id)).all()
    work, statement = sorted(spans.get_finished_spans(), key=lambda s: s.name != "traced work")
    assert statement.name == f"SELECT {engine.dialect.name}"
    assert statement.parent is not None and statement.parent.span_id == work.context.span_id
    assert len(spans.get_finished_spans()) == 2
