"""P7 audit-sink scaling out: events/s with 1, 2 and 4 consumers (each an audit-sink and its daprd, one
consumer group) over the 12 partitions of task-events, the audit trail sharded into a chain per partition.

Real task CloudEvents of 240 users are produced where daprd's producer would put them (the partition of the
user's key, todo.domain.audit.chain_of), so each consumer's partitions are its chains. Each round starts
its consumers fresh, lets the group settle on a warm-up batch, then times a batch from its first record
to the group's committed end (sarama commits about once a second: a round is rounded up by up to ~1 s).
At the end the trail is verified, every chain."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from sqlalchemy import create_engine

from todo.adapters.audit_store import SqlAuditUnitOfWork
from todo.domain.audit import chain_of
from todo.domain.task import Status, Task, TaskEvent, TaskFields
from todo.service import audit
from todo.service.events import TOPIC_PARTITIONS, task_cloud_event
from todo_dev.stack import Ports, Stack

from .common import Row, engines, make_stack, median
from .p6_consumers import TOPIC, _caught_up, _ends

SINK = "audit-sink"
USERS = [f"bench-p7-{n}" for n in range(240)]
CONSUMERS = (1, 2, 4)


def _events(count: int, start: int) -> list[tuple[str, bytes]]:
    import json

    now = datetime.now(UTC)
    found = []
    for n in range(start, start + count):
        user = USERS[n % len(USERS)]
        task = Task(n + 1, user, TaskFields(title=f"p7 {n}"), Status.OPEN, None, now, now, 1)
        event = task_cloud_event(TaskEvent("created", task, now), "create-task").cloud_event
        found.append((user, json.dumps(event).encode()))
    return found


def _produce(producer: Producer, events: list[tuple[str, bytes]]) -> None:
    for user, value in events:
        producer.produce(TOPIC, key=user, value=value, partition=chain_of(user, TOPIC_PARTITIONS),
                         headers=[("content-type", "application/cloudevents+json")])
        producer.poll(0)
    producer.flush(60)


def _replica(stack: Stack, index: int) -> tuple[str, Ports]:
    return f"{SINK}-{index}", stack.replica_ports(index)


def _wait(admin: AdminClient, stack: Stack, timeout: float) -> bool:
    ends = _ends(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _caught_up(admin, SINK, ends):
            return True
        time.sleep(0.1)
    return False


def run(quick: bool = False) -> list[Row]:
    batch = 6_000 if quick else 24_000
    repeats = 1 if quick else 3
    stack = make_stack("p7", (SINK,))
    rates: dict[int, list[float]] = {n: [] for n in CONSUMERS}
    produced = 0
    with engines(stack, kafka=True):
        admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "linger.ms": 5})
        for _ in range(repeats):
            for n in CONSUMERS:
                replicas = [_replica(stack, i) for i in range(n)]
                for name, ports in replicas:
                    stack.start_function(SINK, ports=ports, name=name)
                warm = _events(TOPIC_PARTITIONS * 20, produced)
                _produce(producer, warm)
                produced += len(warm)
                if not _wait(admin, stack, 120):
                    raise RuntimeError(f"{n} audit-sink consumers did not take the warm-up batch")
                events = _events(batch, produced)
                started = time.perf_counter()
                _produce(producer, events)
                produced += batch
                rate = batch / (time.perf_counter() - started) if _wait(admin, stack, 300) else float("nan")
                rates[n].append(rate)
                print(f"P7 round: {n} consumer(s) {rate:.0f} events/s", flush=True)
                for name, _ in replicas:
                    stack.stop(f"{name}.daprd")
                    stack.stop(name)
        engine = create_engine(stack.database_url, connect_args={"ssl_context": False})
        verified = audit.verify(SqlAuditUnitOfWork(engine))
        engine.dispose()
        del admin, producer
    return _rows(rates, batch, produced, verified)


def _rows(rates: dict[int, list[float]], batch: int, produced: int, verified: Any) -> list[Row]:
    one = median(rates[1])
    rows = []
    for n in CONSUMERS:
        rate = median(rates[n])
        previous = median(rates[CONSUMERS[CONSUMERS.index(n) - 1]]) if n > 1 else None
        if n == 1:
            target, met = "the baseline of 2 and 4", None
        elif n == 2:
            target, met = "≥ 1.5 x one consumer", rate >= 1.5 * one
        else:
            target, met = "no worse than 2 consumers", previous is not None and rate >= previous
        rows.append(Row(
            id="P7", what=f"audit-sink, {n} consumer(s) over {TOPIC_PARTITIONS} partitions, batches of {batch}",
            measured={"events_per_s": round(rate, 1), "runs": [round(r, 1) for r in rates[n]]},
            baseline={"what": "1 consumer", "events_per_s": round(one, 1)},
            ratio=round(rate / one, 3), ratio_text=f"{rate / one:.2f} x one consumer", target=target, met=met))
    rows.append(Row(
        id="P7", what="the trail after the runs: every chain verified",
        measured={"ok": verified.ok, "entries": verified.checked, "chains": len(verified.chains),
                  "events_produced": produced, "checkpoint": verified.checkpoint},
        target="every chain verifies, every event audited once", met=verified.ok and verified.checked == produced))
    return rows

