"""todo.metrics: the families as Prometheus reads them, without prometheus-client until a scrape."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from todo import metrics


def test_the_families_are_the_ones_issue_13_names() -> None:
    assert {f.name for f in metrics.FAMILIES} == {
        "todo_http_requests_total", "todo_http_request_duration_seconds", "todo_events_total",
        "todo_event_processing_seconds", "todo_outbox_pending", "todo_outbox_oldest_pending_seconds",
        "todo_outbox_published_total", "todo_outbox_publish_failures_total", "todo_reminder_lateness_seconds",
        "todo_notifications_total", "todo_push_connections", "todo_push_messages_total", "todo_push_lag_seconds",
        "todo_audit_entries_total", "todo_audit_chain_length"}
    assert metrics.EVENTS.labels == ("function", "topic", "type", "outcome")
    assert metrics.HTTP_REQUESTS.labels == ("function", "operation", "status")


def test_a_scrape_shows_counters_and_cumulative_histogram_buckets() -> None:
    metrics.PUSH_MESSAGES.inc(function="unit-a")
    metrics.PUSH_MESSAGES.inc(2, function="unit-a")
    for seconds in (0.07, 0.3, 7.0):
        metrics.PUSH_LAG.observe(seconds, function="unit-a")
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert samples[("todo_push_messages_total", (("function", "unit-a"),))] == 3
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-a"), ("le", "0.1")))] == 1
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-a"), ("le", "5.0")))] == 2
    assert samples[("todo_push_lag_seconds_bucket", (("function", "unit-a"), ("le", "+Inf")))] == 3
    assert samples[("todo_push_lag_seconds_count", (("function", "unit-a"),))] == 3
    assert samples[("todo_push_lag_seconds_sum", (("function", "unit-a"),))] == pytest.approx(7.37)


def test_an_observation_with_the_wrong_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.EVENTS.inc(function="x", topic="t", type="y")  # no outcome
    with pytest.raises(ValueError, match="takes the labels"):
        metrics.PUSH_CONNECTIONS.set(1, function="x", user="alice")  # an unbounded label


def test_a_function_module_loads_neither_prometheus_client_nor_opentelemetry() -> None:
    # The cold start pays for neither until a scrape, or until tracing is configured.
    code = ("import sys, runpy; runpy.run_path('functions/create-task/main.py'); "
            "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', 'opentelemetry'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[]"
