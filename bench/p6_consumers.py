"""P6 on-task-event and audit-sink through daprd: events/s sustained. A batch of real task events (the
outbox's own CloudEvent of a created task, with fresh ids) is produced onto task-events; the time until each
function's consumer group (daprd's, group id = app id) has committed the end of the topic gives its rate.
Baseline: a raw confluent_kafka consumer reading the same topic. Alternating rounds.

Committed offsets are what daprd's Kafka client (sarama) auto-commits about once a second, so a round's
time is rounded up by up to ~1 s; batches are large enough for that to matter little."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from todo_dev.stack import Stack

from .common import Row, engines, headers, make_stack, median, psql

TOPIC = "task-events"
CONSUMERS = ("on-task-event", "audit-sink")


def _ends(stack: Stack) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    meta = consumer.list_topics(TOPIC, timeout=10)
    ends = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
            for p in meta.topics[TOPIC].partitions}
    consumer.close()
    return ends


def _committed(admin: AdminClient, group: str) -> dict[int, int]:
    from confluent_kafka import ConsumerGroupTopicPartitions
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    result = next(iter(futures.values())).result(10)
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == TOPIC}


def _caught_up(admin: AdminClient, group: str, ends: dict[int, int]) -> bool:
    done = _committed(admin, group)
    return all(done.get(p, -1) >= end for p, end in ends.items())


def _raw_rate(stack: Stack, expect: int) -> float:
    """A raw consumer (new group, from the beginning) reading ``expect`` records: records/s."""
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([TOPIC])
    seen = 0
    first = None
    deadline = time.monotonic() + 120
    while seen < expect and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.5):
            if message.error() is None:
                first = first or time.perf_counter()
                seen += 1
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return seen / elapsed if elapsed > 0 else float("nan")


def run(quick: bool = False) -> list[Row]:
    batch = 2_000 if quick else 10_000
    repeats = 5
    stack = make_stack("p6", ("create-task", *CONSUMERS))
    with engines(stack, kafka=True):
        for function in stack.functions:
            stack.start_function(function)
        api = f"http://127.0.0.1:{stack.ports('create-task').app}/tasks"
        httpx.post(api, json={"title": "template", "tags": ["bench"]}, headers=headers("bench-p6")).raise_for_status()
        event = json.loads(psql(stack, f"SELECT payload FROM outbox WHERE topic = '{TOPIC}' ORDER BY id LIMIT 1"))
        admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
        producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "linger.ms": 5})
        rates: dict[str, list[float]] = {c: [] for c in CONSUMERS}
        raw: list[float] = []
        total = 0
        for _ in range(repeats):  # alternate: a batch through daprd to both functions, then the raw consumer
            started = time.perf_counter()
            for i in range(batch):
                value = json.dumps({**event, "id": str(uuid.uuid4())}).encode()
                producer.produce(TOPIC, key=f"bench-p6-{i % 50}", value=value,
                                 headers=[("content-type", "application/cloudevents+json")])
                producer.poll(0)
            producer.flush(30)
            total += batch
            ends = _ends(stack)
            pending = set(CONSUMERS)
            deadline = time.monotonic() + 240
            while pending and time.monotonic() < deadline:
                for group in list(pending):
                    if _caught_up(admin, group, ends):
                        rates[group].append(batch / (time.perf_counter() - started))
                        pending.discard(group)
                time.sleep(0.2)
            for group in pending:
                rates[group].append(float("nan"))
            raw.append(_raw_rate(stack, total))
            print(f"P6 round: {({c: round(r[-1]) for c, r in rates.items()})} events/s; raw {raw[-1]:.0f}/s",
                  flush=True)
        audit_rows = psql(stack, "SELECT count(*) FROM audit_log").strip()
        producer.flush(5)
        del admin, producer
    rows = []
    for group in CONSUMERS:
        rate = median(rates[group])
        rows.append(Row(
            id="P6", what=f"{group} through daprd, batches of {batch}",
            measured={"events_per_s": round(rate, 1), "runs": [round(r, 1) for r in rates[group]],
                      **({"audit_rows": int(audit_rows)} if group == "audit-sink" else {})},
            baseline={"what": "raw confluent_kafka consumer", "events_per_s": round(median(raw), 1)},
            ratio=round(rate / median(raw), 4), ratio_text=f"{rate / median(raw):.1%} of raw consumer",
            target="≥ 1,000 events/s", met=rate >= 1000))
    return rows
