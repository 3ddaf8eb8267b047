"""todo.tracing: the consumer spans of a delivery, one in each trace its events came from."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from todo import tracing
from todo.adapters.publishers import DaprPublisher
from todo.settings import Settings

A = "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-00000000000000a1-01"  # daprd's delivery span, in trace a…
A_EVENT = "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-00000000000000a2-01"  # the writer's span of an event of a…
B_EVENT = "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-00000000000000b2-01"
B_LATER = "00-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-00000000000000b3-01"


def ids(span: ReadableSpan) -> tuple[str, str | None]:
    """(its trace, its parent span), as hex."""
    parent = span.parent
    return format(span.context.trace_id, "032x"), format(parent.span_id, "016x") if parent else None


def test_a_bulk_of_two_traces_has_a_consumer_span_in_each(spans: InMemorySpanExporter) -> None:
    with tracing.delivery("audit-sink task.created", header=A, events=[A_EVENT, B_EVENT, B_LATER]), \
            tracing.span("INSERT postgresql", kind="client"):
        pass
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans.get_finished_spans():
        by_name.setdefault(span.name, []).append(span)
    consumers = by_name["audit-sink task.created"]
    assert sorted(ids(s) for s in consumers) == [("a" * 32, "00000000000000a1"), ("b" * 32, "00000000000000b2")]
    [main] = [s for s in consumers if ids(s)[0] == "a" * 32]
    [other] = [s for s in consumers if ids(s)[0] == "b" * 32]
    [statement] = by_name["INSERT postgresql"]
    assert statement.parent is not None and statement.parent.span_id == main.context.span_id  # the work is main's
    assert [link.context.span_id for link in other.links] == [main.context.span_id]


def test_without_a_header_the_first_events_trace_is_the_current_one(spans: InMemorySpanExporter) -> None:
    with tracing.delivery("push-update push.change", header=None, events=[None, B_EVENT]) as current:
        assert tracing.current_traceparent() is not None
        assert format(current.get_span_context().trace_id, "032x") == "b" * 32
    [span] = spans.get_finished_spans()
    assert ids(span) == ("b" * 32, "00000000000000b2")


def test_with_tracing_off_a_delivery_is_no_span() -> None:
    assert tracing._tracer is None
    with tracing.delivery("x", header=A, events=[A_EVENT]) as current:
        assert current is None
        assert tracing.current_traceparent() is None


class Client:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish_events(self, pubsub_name: str, topic_name: str, data: list[Any]) -> Any:
        self.events.extend(json.loads(entry.event) for entry in data)
        return type("Response", (), {"failed_entries": []})()


def test_daprd_is_handed_each_events_own_trace_context_as_its_traceid() -> None:
    # Otherwise daprd writes its publish span over traceparent, and a bulk's events all join the first's trace.
    publisher = DaprPublisher(Settings())
    publisher._client = client = Client()
    event = {"id": "1", "source": "/s", "type": "t", "specversion": "1.0"}
    publisher.publish_many("task-events", [("alice", {**event, "traceparent": B_EVENT}), ("bob", event)])
    assert client.events == [{**event, "traceparent": B_EVENT, "traceid": B_EVENT}, event]
