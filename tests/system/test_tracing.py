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
        """A new trace where a daprd published to task-events and every consumer's daprd delivered it
        (daprd reports its app id as the service name). Usually create-task's daprd publishes, but every
        function's relay drains the one outbox (todo.adapters.outbox): another one's sweep may win."""
        for trace in traces(stack, "create-task", limit=1000):
            if trace["traceID"] in seen:
                continue
            spans = [(service_of(trace, span), span) for span in trace["spans"]]
            published = any("PublishEvent" in span["operationName"]
                            and tag(span, "messaging.destination.name") == "task-events" for _, span in spans)
            receivers = {who for who, span in spans if span["operationName"] == "pubsub/task-events"}
            if published and consumers <= receivers:
                return trace
        raise AssertionError("no new trace of create-task publishing to task-events and its deliveries yet")

    trace = eventually(delivered, timeout=60)
    by_id = {span["spanID"]: span for span in trace["spans"]}
    for span in trace["spans"]:
        if span["operationName"] == "pubsub/task-events":  # each delivery is a child of the change's publish
            parent = by_id.get(next(r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"))
            assert parent is not None, (span, trace)
            assert service_of(trace, parent) == "create-task" or "Publish" in parent["operationName"], (span, trace)


def tag(span: dict[str, Any], key: str) -> Any:
    return next((t["value"] for t in span["tags"] if t["key"] == key), None)


COMPLETE = "POST /tasks/{id}/complete"  # a span is named after its route, not its path


def references(span: dict[str, Any]) -> list[str]:
    return [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]


def test_one_trace_follows_a_completion_from_its_request_through_daprd_to_every_consumer(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    """Create a recurring task, complete it: the completion's trace holds update-task's request span and
    its publish through a relay's daprd, each consumer's daprd delivery and the consumer spans of audit-sink,
    on-task-event (and its publish of the next instance) and push-update, every span's parent within the
    trace, up to the one request."""
    task = api("POST", "/tasks", user, json={"title": "traced series", "due_at": "2031-01-01T09:00:00Z",
                                              "recurrence": {"rrule": "FREQ=DAILY"}}).json()
    assert api("POST", f"/tasks/{task['id']}/complete", user).status_code == 200
    consumers = {"audit-sink", "on-task-event", "push-update"}

    def whole(trace: dict[str, Any]) -> dict[str, Any]:
        """The trace once it is whole: each process exports its spans on its own schedule (daprd's batch
        waits seconds), so a span can be in Jaeger before its parent."""
        by_id = {s["spanID"]: s for s in trace["spans"]}
        roots = [s for s in trace["spans"] if not references(s)]
        assert [s["operationName"] for s in roots] == [COMPLETE], "the completion's request is not the one root yet"
        [root] = roots
        assert service_of(trace, root) == "update-task" and tag(root, "span.kind") == "server"

        def ancestry(span: dict[str, Any]) -> list[str]:
            chain = []
            while references(span):
                parent = by_id.get(references(span)[0])
                assert parent is not None, f"{span['operationName']}'s parent is not in the trace yet"
                chain.append(f"{service_of(trace, parent)}:{parent['operationName']}")
                span = parent
            return chain

        chains = {s["spanID"]: ancestry(s) for s in trace["spans"]}
        spans = [(service_of(trace, s), s) for s in trace["spans"]]
        assert consumers <= {who for who, s in spans if tag(s, "span.kind") == "consumer"}, "a consumer is missing"
        # Each consumer's own daprd delivered it (daprd reports its app id as the service name).
        assert consumers <= {who for who, s in spans if s["operationName"].startswith("pubsub/")}, \
            "a consumer's daprd delivery is missing"
        # A daprd published it, called from its own function's relay span: usually update-task's, but every
        # function's relay drains the one outbox (todo.adapters.outbox), so another one's sweep may win.
        assert any("Publish" in s["operationName"] and f"{who}:publish task-events" in chains[s["spanID"]]
                   for who, s in spans), "a daprd publish from its function's relay is missing"
        # on-task-event published the next instance of the series, within the same trace.
        assert any(who == "on-task-event" and s["operationName"] == "publish task-events" for who, s in spans)
        # The database statements of the completion are children of the request.
        assert any(tag(s, "db.system") == "postgresql" and references(s) == [root["spanID"]] for s in trace["spans"])
        return trace

    def completion() -> dict[str, Any]:
        for trace in traces(stack, "update-task", operation=COMPLETE, limit=50):
            if any(tag(s, "todo.task_id") == task["id"] for s in trace["spans"]):
                return whole(trace)
        raise AssertionError(f"no trace of task {task['id']}'s completion yet")

    eventually(completion, timeout=90, interval=1.0)
