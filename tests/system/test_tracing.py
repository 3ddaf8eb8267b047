"""The stack's Jaeger: it takes OTLP on the ports of this run's block and answers its query API, and
every daprd exports its spans to it (scripts/stack/dapr-config.yaml)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from todo.routes import SUBSCRIPTIONS
from todo_dev import ports
from todo_dev.stack import Stack

from .conftest import eventually

pytestmark = pytest.mark.system


def traces(stack: Stack, service: str, **params: Any) -> list[dict[str, Any]]:
    reply = httpx.get(f"{stack.jaeger_query_url}/api/traces", params={"service": service, **params}, timeout=10)
    reply.raise_for_status()
    data: list[dict[str, Any]] = reply.json()["data"] or []
    return data


def service_of(trace: dict[str, Any], span: dict[str, Any]) -> str:
    name: str = trace["processes"][span["processID"]]["serviceName"]
    return name


def test_the_stack_jaeger_listens_in_this_runs_port_block(stack: Stack) -> None:
    assert stack.tracing == ports.tracing()
    assert all(port < 32768 for port in vars(stack.tracing).values())


def test_a_span_sent_over_otlp_is_read_back_from_the_query_api(stack: Stack) -> None:
    service = f"probe-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{stack.tracing.otlp_http}/v1/traces", timeout=10)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("tests.system").start_as_current_span("probe", attributes={"probe.run": service}) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()

    def stored() -> dict[str, Any]:
        found = traces(stack, service)
        assert found, f"no trace of {service} yet"
        return found[0]

    trace = eventually(stored, timeout=30)
    assert trace["traceID"] == trace_id
    [probe] = trace["spans"]
    assert probe["operationName"] == "probe"
    assert {"key": "probe.run", "type": "string", "value": service} in probe["tags"]


def test_daprd_traces_a_publish_of_create_task_into_its_deliveries_to_each_consumer(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    consumers = {s.function for s in SUBSCRIPTIONS if s.topic == "task-events" and s.function in stack.functions}
    assert consumers
    seen = {trace["traceID"] for trace in traces(stack, "create-task", limit=1000)}
    assert api("POST", "/tasks", user, json={"title": "traced"}).status_code == 201

    def delivered() -> dict[str, Any]:
        """A new trace where create-task's daprd published to task-events and every consumer's daprd
        delivered it (daprd reports its app id as the service name)."""
        for trace in traces(stack, "create-task", limit=1000):
            if trace["traceID"] in seen:
                continue
            spans = [(service_of(trace, span), span) for span in trace["spans"]]
            published = any(who == "create-task" and "PublishEvent" in span["operationName"]
                            and tag(span, "messaging.destination.name") == "task-events" for who, span in spans)
            receivers = {who for who, span in spans if span["operationName"] == "pubsub/task-events"}
            if published and consumers <= receivers:
                return trace
        raise AssertionError("no new trace of create-task publishing to task-events and its deliveries yet")

    trace = eventually(delivered, timeout=60)
    owner = {span["spanID"]: service_of(trace, span) for span in trace["spans"]}
    for span in trace["spans"]:
        if span["operationName"] == "pubsub/task-events":  # each delivery is a child of create-task's publish
            parent = next(r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF")
            assert owner.get(parent) == "create-task", (span, trace)


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


COMPLETE = "POST /tasks/{id}/complete"  # a span is named after its route, not its path


def references(span: dict[str, Any]) -> list[str]:
    return [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]


def test_one_trace_follows_a_completion_from_its_request_through_daprd_to_every_consumer(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    """Create a recurring task, complete it: the completion's trace holds update-task's request span,
    the daprd hops, and the consumer spans of audit-sink, on-task-event (and the next instance's
    writes) and push-update, each parented within the trace up to the request."""
    task = api("POST", "/tasks", user, json={"title": "traced series", "due_at": "2031-01-01T09:00:00Z",
                                              "recurrence": {"rrule": "FREQ=DAILY"}}).json()
    assert api("POST", f"/tasks/{task['id']}/complete", user).status_code == 200
    consumers = {"audit-sink", "on-task-event", "push-update"}

    def complete_trace() -> dict[str, Any]:
        for trace in traces(stack, "update-task", operation=COMPLETE, limit=50):
            if not any(tag(s, "todo.task_id") == task["id"] for s in trace["spans"]):
                continue
            seen = {service_of(trace, s) for s in trace["spans"] if tag(s, "span.kind") == "consumer"}
            if consumers <= seen and any(service_of(trace, s) == "on-task-event" and s["operationName"].startswith(
                    "publish ") for s in trace["spans"]):
                return trace
        raise AssertionError(f"no complete trace of task {task['id']}'s completion yet")

    trace = eventually(complete_trace, timeout=90, interval=1.0)
    by_id = {s["spanID"]: s for s in trace["spans"]}
    [root] = [s for s in trace["spans"] if s["operationName"] == COMPLETE]
    assert service_of(trace, root) == "update-task"
    assert tag(root, "span.kind") == "server"

    def ancestry(span: dict[str, Any]) -> list[str]:
        chain = []
        while references(span):
            parent = by_id.get(references(span)[0])
            assert parent is not None, f"{span['operationName']} has a parent outside the trace"
            chain.append(service_of(trace, parent) + ":" + parent["operationName"])
            span = parent
        assert span is root, f"a second root: {span['operationName']}"
        return chain

    for span in trace["spans"]:
        if tag(span, "span.kind") == "consumer" and service_of(trace, span) in consumers:
            chain = ancestry(span)
            # Its own daprd delivered it; update-task's daprd published it.
            assert chain[0].startswith(service_of(trace, span) + ":"), chain
            assert any(link.startswith("update-task:") and "Publish" in link for link in chain), chain
    # The database statements of the completion are children of the request.
    assert any(tag(s, "db.system") == "postgresql" and references(s) == [root["spanID"]] for s in trace["spans"])
