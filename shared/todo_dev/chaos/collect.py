"""Read what the checker needs from the database and Kafka, once the system has settled; and tell when it
has. Only the run's own users count (their ids share a prefix): the short run shares its stack with the
other system tests."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from sqlalchemy import Engine, text

from todo.routes import SUBSCRIPTIONS

from ..stack import Stack
from .checker import Collected

TOPICS = tuple(dict.fromkeys(s.topic for s in SUBSCRIPTIONS))


def outbox_rows(engine: Engine, prefix: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, event_id, topic, payload, published_at FROM outbox"
                                 " WHERE partition_key LIKE :users ORDER BY id"), {"users": f"{prefix}-%"}).all()
    out = []
    for row in rows:
        event = json.loads(row.payload)
        data = event.get("data") or {}
        kind = event.get("type", "").removeprefix("dev.todo.").removesuffix(".v1")
        task = data.get("task_data") or {}
        series = task.get("series") or {}
        out.append({"id": row.id, "event_id": row.event_id, "topic": row.topic,
                    "published": row.published_at is not None,
                    "type": kind.removeprefix("task.") if kind.startswith("task.") else kind,
                    "user_id": data.get("user_id"), "task_id": data.get("task_id", task.get("id")),
                    "version": task.get("version"), "series_id": series.get("id"),
                    "occurrence": series.get("occurrence")})
    return out


def pending(engine: Engine, prefix: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"
                                     " AND partition_key LIKE :users"), {"users": f"{prefix}-%"}).scalar_one())


def audited(engine: Engine, prefix: str) -> int:
    """How many of the run's events the trail holds: still growing means a consumer is still at work."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_log a JOIN outbox o ON o.event_id = a.event_id"
                                     " WHERE o.partition_key LIKE :users"), {"users": f"{prefix}-%"}).scalar_one())


def feed_heads(engine: Engine, prefix: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT user_id, last_seq FROM user_seqs WHERE user_id LIKE :users"),
                            {"users": f"{prefix}-%"}).all()
    return {r.user_id: int(r.last_seq) for r in rows}


def consumer_lag(stack: Stack) -> dict[str, int]:
    """Per consumer group (daprd's: the app id), the records of its topics it has not committed yet."""
    lag: dict[str, int] = {}
    for function in dict.fromkeys(s.function for s in SUBSCRIPTIONS if s.function in stack.functions):
        topics = [s.topic for s in SUBSCRIPTIONS if s.function == function]
        consumer = Consumer({**stack.kafka_client(), "group.id": function, "enable.auto.commit": False})
        try:
            parts = [TopicPartition(t, p) for t in topics
                     for p in consumer.list_topics(t, timeout=10).topics[t].partitions]
            committed = consumer.committed(parts, timeout=10)
            behind = 0
            for part in committed:
                _, high = consumer.get_watermark_offsets(part, timeout=10)
                behind += max(0, high - max(part.offset, 0))
            lag[function] = behind
        finally:
            consumer.close()
    return lag


def kafka_ids(stack: Stack, topics: tuple[str, ...] = TOPICS) -> dict[str, dict[str, int]]:
    """Every record of ``topics`` from the beginning to the end, as event id → how many records."""
    out: dict[str, dict[str, int]] = {}
    consumer = Consumer({**stack.kafka_client(), "group.id": f"chaos-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        for topic in topics:
            counts: Counter[str] = Counter()
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, p, low)])
                position = low
                while position < high:
                    message = consumer.poll(5.0)
                    if message is None:
                        raise KafkaException(f"{topic}[{p}] stopped at {position} of {high}")
                    if message.error() is not None:
                        continue
                    offset = message.offset()
                    position = (position if offset is None else offset) + 1
                    try:
                        counts[json.loads(message.value() or b"")["id"]] += 1
                    except (ValueError, KeyError, TypeError):
                        counts["<not a CloudEvent>"] += 1
            out[topic] = dict(counts)
    finally:
        consumer.close()
    return out


def collect(stack: Stack, engine: Engine, prefix: str, calls: list[dict[str, Any]], sockets: list[dict[str, Any]],
            faults: list[dict[str, Any]]) -> Collected:
    outbox = outbox_rows(engine, prefix)
    ours = {r["event_id"] for r in outbox}
    with engine.connect() as conn:
        audit = [{"seq": r.seq, "event_id": r.event_id, "task_id": r.task_id, "action": r.action,
                  "task_version": r.task_version}
                 for r in conn.execute(text("SELECT seq, event_id, task_id, action, task_version FROM audit_log"
                                            " ORDER BY seq"))
                 if r.event_id in ours]
        feed: dict[str, list[int]] = {}
        for r in conn.execute(text("SELECT user_id, seq FROM user_changes WHERE user_id LIKE :users ORDER BY seq"),
                              {"users": f"{prefix}-%"}):
            feed.setdefault(r.user_id, []).append(int(r.seq))
        dead = [{"consumer": r.consumer, "topic": r.topic, "event_id": r.event_id, "reason": r.reason[:300]}
                for r in conn.execute(text("SELECT consumer, topic, event_id, reason FROM dead_letters"))
                if r.event_id in ours]
        ended = [int(r.id) for r in conn.execute(text(
            "SELECT id FROM task_series WHERE ended_at IS NOT NULL AND user_id LIKE :users"),
            {"users": f"{prefix}-%"})]
    kafka = {topic: {i: n for i, n in ids.items() if i in ours} for topic, ids in kafka_ids(stack).items()}
    return Collected(calls=calls, faults=faults, outbox=outbox, audit=audit, feed=feed, sockets=sockets,
                     kafka=kafka, dead_letters=dead, ended_series=ended)
