"""One trace follows a change inside the embedded system: the request's span, the outbox row's
traceparent, and each consumer's span its child (both engines; the real stack's Jaeger in tests/system)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.engine import Engine

from todo import tracing
from todo.adapters.tables import outbox
from todo.routes import SUBSCRIPTIONS
from todo.runtime import Runtime

from .conftest import Api


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("tests"))
    yield exporter
    provider.shutdown()


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
