"""The CloudEvents this system publishes: types, sources and topics in one place.

``type`` is ``dev.todo.task.<event_type>.v1``: a consumer can route on it without parsing ``data``,
and a breaking change of ``data`` gets a new version suffix while the old one keeps being served.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..domain.task import Task, TaskEvent, iso
from .dead_letters import DeadLetter

TASK_EVENTS_TOPIC = "task-events"
REMINDERS_TOPIC = "reminders"
TASK_UPDATES_TOPIC = "task-updates"
# Partitions of each of those topics, keyed by user: one user's events stay in order on one partition.
# The audit trail keeps a chain per partition (todo.service.audit.CHAINS): audit-sink's consumers, each
# given some partitions, then append to chains that no other consumer touches.
TOPIC_PARTITIONS = 12
# Topics whose consumer puts a key's events in order itself, so the outbox relay need not keep that order on
# the wire and sends a batch of them in one request: push-update sends each user's messages by the seq
# their writer numbered them with, dropping a duplicate and filling a gap from the change feed
# (todo.edge.push). On the others a key's events reach Kafka in commit order (todo.adapters.outbox).
SELF_ORDERED_TOPICS = frozenset({TASK_UPDATES_TOPIC})
SPEC_VERSION = "1.0"


@dataclass(frozen=True)
class EventType:
    """One CloudEvent type of ours: ``dev.todo.<family>.<kind>.v1`` on ``topic``."""

    family: str  # "task", "reminder", "push"
    kind: str  # "created", "triggered", "change", ...
    topic: str

    @property
    def type(self) -> str:
        return f"dev.todo.{self.family}.{self.kind}.v1"


# The registry: every type this system publishes, which producers build and consumers look up.
EVENT_TYPES: dict[str, EventType] = {t.type: t for t in (
    *(EventType("task", kind, TASK_EVENTS_TOPIC) for kind in ("created", "updated", "completed", "deleted")),
    *(EventType("reminder", kind, REMINDERS_TOPIC) for kind in ("scheduled", "triggered")),
    EventType("push", "change", TASK_UPDATES_TOPIC),
)}


# A dead letter is published on the dead-letter topic of the topic its event came from, so it is kept
# apart from the registry above (one topic per type): nothing consumes it; people and replay tools read it.
DEAD_LETTER_TYPE = "dev.todo.deadletter.recorded.v1"


def dead_letter_topic(topic: str) -> str:
    """Where the dead letters of ``topic`` go: daprd's subscriptions and Knative's sinks name the same."""
    return f"{topic}.dlq"


def event_type(family: str, kind: str) -> str:
    """The registered type of ``family``/``kind``; KeyError for one that is not ours."""
    found = f"dev.todo.{family}.{kind}.v1"
    if found not in EVENT_TYPES:
        raise KeyError(found)
    return found


def kind_of(cloud_event_type: str, family: str) -> str | None:
    """The kind of a received type when it is a registered type of ``family``, else None."""
    found = EVENT_TYPES.get(cloud_event_type)
    return found.kind if found is not None and found.family == family else None


def task_event_type(event_type_name: str) -> str:
    return event_type("task", event_type_name)


def source_of(function_name: str) -> str:
    return f"/todo/functions/{function_name}"


@dataclass(frozen=True)
class OutgoingEvent:
    """A CloudEvent ready for the outbox: its id is fixed here, once, and survives every republish."""

    topic: str
    partition_key: str
    cloud_event: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.cloud_event["id"])

    def payload(self) -> str:
        return json.dumps(self.cloud_event, separators=(",", ":"), sort_keys=True)


def task_cloud_event(event: TaskEvent, function_name: str) -> OutgoingEvent:
    user_id = event.task.user_id
    return OutgoingEvent(
        topic=TASK_EVENTS_TOPIC,
        partition_key=user_id,  # one user's changes stay in order on one partition
        cloud_event={
            "specversion": SPEC_VERSION,
            "id": str(uuid.uuid4()),
            "source": source_of(function_name),
            "type": task_event_type(event.event_type),
            "subject": str(event.task.id),
            "time": iso(event.timestamp),
            "datacontenttype": "application/json",
            "partitionkey": user_id,
            "data": event.data(),
        },
    )


def reminder_cloud_event(kind: str, task: Task, remind_at: datetime, now: datetime,
                         function_name: str, reminder_id: int | None = None) -> OutgoingEvent:
    """``dev.todo.reminder.<scheduled|triggered>.v1`` on ``reminders``, with the seed payload.

    ``task_version`` is the version of the task the reminder was planned or fired from: it places the
    reminder among the task's changes in its history, whenever the event arrives."""
    user_id = task.user_id
    return OutgoingEvent(
        topic=REMINDERS_TOPIC,
        partition_key=user_id,
        cloud_event={
            "specversion": SPEC_VERSION,
            "id": str(uuid.uuid4()),
            "source": source_of(function_name),
            "type": event_type("reminder", kind),
            "subject": str(task.id),
            "time": iso(now),
            "datacontenttype": "application/json",
            "partitionkey": user_id,
            "data": {"task_id": task.id, "title": task.fields.title, "due_at": iso(task.fields.due_at),
                     "remind_at": iso(remind_at), "user_id": user_id, "task_version": task.version,
                     **({"reminder_id": reminder_id} if reminder_id is not None else {})},
        },
    )


def push_cloud_event(user_id: str, message: dict[str, Any], event_id: str | None = None) -> OutgoingEvent:
    """One numbered message of a user's change feed, on ``task-updates`` for push-update."""
    return OutgoingEvent(
        topic=TASK_UPDATES_TOPIC,
        partition_key=user_id,
        cloud_event={
            "specversion": SPEC_VERSION,
            "id": event_id or str(uuid.uuid4()),
            "source": source_of("change-feed"),
            "type": event_type("push", "change"),
            "subject": user_id,
            "datacontenttype": "application/json",
            "partitionkey": user_id,
            "data": {"user_id": user_id, "message": message},
        },
    )


def dead_letter_cloud_event(letter: DeadLetter, topic: str) -> OutgoingEvent:
    """The record of a dead letter on ``dead_letter_topic(topic)``: who gave up on which event, and why.
    ``data.event`` is the event as it arrived, to inspect or to publish again on ``data.topic``."""
    key = letter.event.get("partitionkey") if isinstance(letter.event, dict) else None
    return OutgoingEvent(
        topic=dead_letter_topic(topic),
        partition_key=key if isinstance(key, str) and key else letter.consumer,
        cloud_event={
            "specversion": SPEC_VERSION,
            "id": str(uuid.uuid4()),
            "source": source_of(letter.consumer),
            "type": DEAD_LETTER_TYPE,
            **({"subject": letter.event_id} if letter.event_id else {}),
            "time": iso(letter.at),
            "datacontenttype": "application/json",
            "data": {**letter.to_json(), "topic": topic},
        },
    )
