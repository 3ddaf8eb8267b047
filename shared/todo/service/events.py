"""The CloudEvents this system publishes: types, sources and topics in one place.

``type`` is ``dev.todo.task.<event_type>.v1``: a consumer can route on it without parsing ``data``,
and a breaking change of ``data`` gets a new version suffix while the old one keeps being served.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from ..domain.task import TaskEvent, iso

TASK_EVENTS_TOPIC = "task-events"
SPEC_VERSION = "1.0"


def task_event_type(event_type: str) -> str:
    return f"dev.todo.task.{event_type}.v1"


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
