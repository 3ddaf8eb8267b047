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
