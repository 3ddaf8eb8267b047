"""The metrics every function serves on ``GET /metrics``: their one list (names fixed by issue 13).

Observations are kept here in plain dictionaries under a lock, and ``prometheus_client`` is imported
only when something scrapes: importing it costs a process about 0.1 s, which a cold start (bench P1)
would otherwise pay on its first request. At a scrape the families are handed to prometheus_client as
a custom collector, which writes the text exposition format.

``knative/alerts.yaml`` reads these names: tests/deploy/test_alerts.py checks that every metric an
alert uses is one of :data:`FAMILIES`.
"""

from __future__ import annotations

import bisect
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Seconds. Latencies of a request or an event: from a millisecond to a retry budget.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Reminder lateness, and the upper buckets of a change's lag: 5 s is a bound, so the alerts' p99 > 5 s is not
# an interpolation.
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# A change's way to the sockets: its hops take milliseconds when all is well (bench P3), so the buckets below
# 50 ms tell which hop a tail comes from.
FRESHNESS_BUCKETS = (0.002, 0.005, 0.01, 0.025, *LATENESS_BUCKETS)


@dataclass
class Family:
    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    labels: tuple[str, ...] = ("function",)
    buckets: tuple[float, ...] = DURATION_BUCKETS
    _values: dict[tuple[str, ...], list[float]] = field(default_factory=dict, repr=False)

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        try:
            key = tuple([labels[name] for name in self.labels])
        except KeyError:
            key = ()
        if len(key) != len(labels) or len(key) != len(self.labels):
            raise ValueError(f"{self.name} takes the labels {self.labels}, not {tuple(labels)}")
        return key

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with _LOCK:
            slot = self._values.setdefault(key, [0.0])
            slot[0] += amount

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with _LOCK:
            self._values[key] = [float(value)]

    def observe(self, value: float, **labels: str) -> None:
        """A histogram's observation: one count per bucket bound (the +Inf one last), then the sum."""
        key = self._key(labels)
        with _LOCK:
            slot = self._values.setdefault(key, [0.0] * (len(self.buckets) + 2))
            slot[bisect.bisect_left(self.buckets, value)] += 1
            slot[-1] += value

    def value(self, **labels: str) -> float:
        """A counter's or gauge's value, or a histogram's count (0 when never observed): for tests."""
        with _LOCK:
            slot = self._values.get(self._key(labels))
        if slot is None:
            return 0.0
        return slot[0] if self.kind != "histogram" else sum(slot[:-1])

    def samples(self) -> Iterator[tuple[tuple[str, ...], list[float]]]:
        with _LOCK:
            items = [(key, list(slot)) for key, slot in self._values.items()]
        yield from items


_LOCK = threading.Lock()

HTTP_REQUESTS = Family("todo_http_requests_total", "counter", "HTTP requests answered, by operation and status",
                       ("function", "operation", "status"))
HTTP_DURATION = Family("todo_http_request_duration_seconds", "histogram",
                       "Time from a request's arrival to its answer", ("function", "operation"))
EVENTS = Family("todo_events_total", "counter",
                "Events delivered to a consumer, by outcome: success, duplicate (a no-op), poison (dead letter), "
                "retry (redelivery asked)", ("function", "topic", "type", "outcome"))
EVENT_SECONDS = Family("todo_event_processing_seconds", "histogram", "Time to apply one delivery (one or a bulk)",
                       ("function", "topic"))
OUTBOX_PENDING = Family("todo_outbox_pending", "gauge", "Outbox rows not yet published (the database's, at scrape)")
OUTBOX_OLDEST = Family("todo_outbox_oldest_pending_seconds", "gauge",
                       "Age of the oldest unpublished outbox row (0 when none), at scrape")
OUTBOX_PUBLISHED = Family("todo_outbox_published_total", "counter", "Outbox rows this process published",
                          ("function", "topic"))
OUTBOX_LAG = Family("todo_outbox_publish_lag_seconds", "histogram",
                    "Time from a change (its writer's clock) to the publish request that carried its event "
                    "(delivered: refused requests are retried and counted when they go through)",
                    ("function", "topic"), buckets=FRESHNESS_BUCKETS)
OUTBOX_FAILURES = Family("todo_outbox_publish_failures_total", "counter",
                         "Publish calls the broker refused (the rows stay pending)", ("function", "topic"))
REMINDER_LATENESS = Family("todo_reminder_lateness_seconds", "histogram",
                           "Fire time minus due time of each triggered reminder", buckets=LATENESS_BUCKETS)
NOTIFICATIONS = Family("todo_notifications_total", "counter", "Notifications sent, by channel kind and outcome",
                       ("function", "channel", "outcome"))
PUSH_CONNECTIONS = Family("todo_push_connections", "gauge", "Open WebSockets of this process")
PUSH_MESSAGES = Family("todo_push_messages_total", "counter", "Messages sent on WebSockets")
PUSH_LAG = Family("todo_push_lag_seconds", "histogram",
                  "Time from a change to its event's hand-over to this process's sockets", buckets=FRESHNESS_BUCKETS)
PUSH_SEND_LAG = Family("todo_push_send_lag_seconds", "histogram",
                       "Time from a change to its send on a socket, by path: event (from Kafka) or feed (a replay, "
                       "a gap filled, another replica's change)", ("function", "path"), buckets=FRESHNESS_BUCKETS)
AUDIT_ENTRIES = Family("todo_audit_entries_total", "counter", "Audit entries appended by this process")
AUDIT_CHAIN = Family("todo_audit_chain_length", "gauge",
                     "Entries on the audit hash chains (every chain's length summed, the database's, at scrape)")

FAMILIES: tuple[Family, ...] = (
    HTTP_REQUESTS, HTTP_DURATION, EVENTS, EVENT_SECONDS, OUTBOX_PENDING, OUTBOX_OLDEST, OUTBOX_PUBLISHED,
    OUTBOX_LAG, OUTBOX_FAILURES, REMINDER_LATENESS, NOTIFICATIONS, PUSH_CONNECTIONS, PUSH_MESSAGES, PUSH_LAG,
    PUSH_SEND_LAG, AUDIT_ENTRIES, AUDIT_CHAIN,
)


def exported_names() -> set[str]:
    """Every series name a scrape can show (a histogram's ``_bucket``, ``_sum`` and ``_count`` too)."""
    names = set()
    for family in FAMILIES:
        names.add(family.name)
        if family.kind == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


# Which events of the current delivery were duplicates: todo.adapters.idempotency adds the
# (source, id) of each claim that found the event applied before; the event edge reads it.
duplicates: contextvars.ContextVar[set[tuple[str, str]] | None] = contextvars.ContextVar(
    "todo_duplicates", default=None)


def note_duplicates(keys: set[tuple[str, str]]) -> None:
    found = duplicates.get()
    if found is not None:
        found.update(keys)


class _Collector:
    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        for family in FAMILIES:
            base = family.name.removesuffix("_total") if family.kind == "counter" else family.name
            metric: Any
            if family.kind == "counter":
                metric = CounterMetricFamily(base, family.help, labels=family.labels)
            elif family.kind == "gauge":
                metric = GaugeMetricFamily(base, family.help, labels=family.labels)
            else:
                metric = HistogramMetricFamily(base, family.help, labels=family.labels)
            for key, slot in family.samples():
                if family.kind == "histogram":
                    running, buckets = 0.0, []
                    for bound, count in zip((*map(str, family.buckets), "+Inf"), slot[:-1], strict=True):
                        running += count
                        buckets.append((bound, running))
                    metric.add_metric(list(key), buckets, slot[-1])
                else:
                    metric.add_metric(list(key), slot[0])
            yield metric


_registry: Any = None


def exposition() -> tuple[bytes, str]:
    """The text exposition of every family, and its content type (prometheus_client loaded now)."""
    global _registry
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

    with _LOCK:
        if _registry is None:
            _registry = CollectorRegistry(auto_describe=False)
            _registry.register(_Collector())
    # Our names are all classic ones, so the text is 0.0.4's: the version every Prometheus (2.x too) reads.
    return generate_latest(_registry), CONTENT_TYPE_PLAIN_0_0_4
