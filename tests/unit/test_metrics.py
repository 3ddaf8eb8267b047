"""todo.metrics: the families as Prometheus reads them, without prometheus-client until a scrape."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from todo import metrics


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A scrape's samples by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def test_the_families_are_the_ones_issue_13_names_and_the_hops_of_issue_14() -> None:
    assert {f.name for f in metrics.FAMILIES} == {
        "todo_http_requests_total", "todo_http_request_duration_seconds", "todo_events_total",
        "todo_event_processing_seconds", "todo_outbox_pending", "todo_outbox_oldest_pending_seconds",
        "todo_outbox_published_total", "todo_outbox_publish_failures_total", "todo_reminder_lateness_seconds",
        "todo_notifications_total", "todo_push_connections", "todo_push_messages_total", "todo_push_lag_seconds",
        "todo_audit_entries_total", "todo_audit_chain_length",
        "todo_outbox_publish_lag_seconds", "todo_push_send_lag_seconds"}
    assert metrics.EVENTS.labels == ("function", "topic", "type", "outcome")
    assert metrics.HTTP_REQUESTS.labels == ("function", "operation", "status")


def test_a_scrape_shows_counters_and_cumulative_histogram_buckets() -> None:
    metrics.PUSH_MESSAGES.inc(function="unit-a")
    metrics.PUSH_MESSAGES.inc(2, function="unit-a")
    for seconds in (0.07, 0.3, 7.0):
        metrics.PUSH_LAG.observe(seconds, function="unit-a")
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = _samples(body)
    assert samples[("todo_push_messages_total", (("function", "unit-a"),))] == 3
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-a"), ("le", "0.1")))] == 1
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-a"), ("le", "5.0")))] == 2
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-a"), ("le", "+Inf")))] == 3
    assert samples[("todo_push_lag_seconds_count", (("function", "unit-a"),))] == 3
    assert samples[("todo_push_lag_seconds_sum", (("function", "unit-a"),))] == pytest.approx(7.37)


def test_a_changes_hops_resolve_milliseconds_and_keep_the_alerts_five_second_bound() -> None:
    # A hop takes milliseconds when all is well (bench P3 reads each hop's p99 from these buckets).
    for family in (metrics.OUTBOX_LAG, metrics.PUSH_LAG, metrics.PUSH_SEND_LAG):
        assert {0.005, 0.01, 0.025, 5.0} <= set(family.buckets), family.name
    metrics.PUSH_LAG.observe(0.004, function="unit-ms")
    body, _ = metrics.exposition()
    samples = _samples(body)
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-ms"), ("le", "0.002")))] == 0
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-ms"), ("le", "0.005")))] == 1


def test_an_observation_with_the_wrong_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.EVENTS.inc(function="x", topic="t", type="y")  # no outcome
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.PUSH_CONNECTIONS.set(1, function="x", user="alice")  # an unbounded label


TELEMETRY = ("prometheus_client", "opentelemetry")
LOADED = "print(sorted({{p for m in sys.modules for p in {prefixes!r} if m == p or m.startswith(p + '.')}}))"


def first_requests(tmp_path: Path, *paths: str, prefixes: tuple[str, ...] = TELEMETRY, **env: str) -> list[str]:
    """The telemetry libraries (the packages ``prefixes`` names) a fresh create-task process
    holds after answering ``paths``, served as functions-framework serves it (the cold start bench P1 times)."""
    code = ("import sys\n"
            "from functions_framework.aio import create_asgi_app\n"
            "from starlette.testclient import TestClient\n"
            "app = TestClient(create_asgi_app('create_task', 'functions/create-task/main.py'))\n"
            f"for path in {paths!r}:\n"
            "    app.post(path) if path == '/tasks' else app.get(path)\n"
            f"{LOADED.format(prefixes=prefixes)}\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "TODO_DATA_DIR": str(tmp_path), **env})
    loaded: list[str] = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    return loaded


def test_a_cold_start_loads_neither_prometheus_client_nor_opentelemetry(tmp_path: Path) -> None:
    # The first request (a 401 composes the runtime: settings, logging, tracing) pays for neither.
    assert first_requests(tmp_path, "/tasks") == []


def test_the_first_scrape_loads_prometheus_client_and_configured_tracing_loads_opentelemetry(
        tmp_path: Path) -> None:
    # The other side of the test above: it would see either library were it loaded.
    assert first_requests(tmp_path, "/tasks", "/metrics") == ["prometheus_client"]
    assert first_requests(tmp_path, "/tasks", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9") == ["opentelemetry"]


def test_configured_tracing_builds_its_otlp_exporter_at_the_first_export_not_at_the_first_request(
        tmp_path: Path) -> None:
    # The exporter brings requests, urllib3 and the protobuf encoders (~200 ms, bench T1); the batch
    # processor's thread builds it when it first exports. That spans do get exported: tests/system/test_tracing.py.
    exporter = ("opentelemetry.exporter", "requests", "urllib3", "google.protobuf")
    assert first_requests(tmp_path, "/tasks", prefixes=("opentelemetry", *exporter), OTEL_EXPORTER_OTLP_TIMEOUT="1",
                          OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9") == ["opentelemetry"]
