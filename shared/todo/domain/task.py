"""Tasks and what can happen to them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any, Literal

from .durations import format_duration
from .errors import FieldError, InvalidTask
from .recurrence import Recurrence, Schedule, check_series
from .text import first_unstorable

MAX_TAGS = 20
MAX_REMINDERS = 10


class Priority(IntEnum):
    """Stored as its number so that the database sorts high > medium > low."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Priority:
        return cls[label.upper()]


class Status(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


EventType = Literal["created", "updated", "completed", "deleted"]


@dataclass(frozen=True)
class Reminder:
    """Either ``before`` the due date or ``at`` an absolute instant."""

    before: timedelta | None = None
    at: datetime | None = None

    def to_json(self) -> dict[str, str]:
        if self.before is not None:
            return {"before": format_duration(self.before)}
        at = iso(self.at)
        assert at is not None
        return {"at": at}


@dataclass(frozen=True)
class TaskFields:
    """What a person writes; everything else about a task is derived."""

    title: str
    description: str = ""
    priority: Priority = Priority.MEDIUM
    tags: tuple[str, ...] = ()
    due_at: datetime | None = None
    timezone: str = "UTC"
    recurrence: Recurrence | None = None
    reminders: tuple[Reminder, ...] = ()

    def check(self) -> TaskFields:
        """Rules that span fields, and text no store can keep (todo.domain.text), whoever writes; other
        single-field rules are enforced where the input is parsed."""
        errors: list[FieldError] = []
        for name, value in (("title", self.title), ("description", self.description), ("tags", list(self.tags))):
            found = first_unstorable(value, name)
            if found is not None:
                errors.append(FieldError(*found))
        if self.recurrence is not None and self.due_at is None:
            errors.append(FieldError("recurrence", "a recurring task needs a due_at to anchor the series"))
        elif self.recurrence is not None and self.due_at is not None:
            errors += check_series(self.recurrence, self.timezone, self.due_at)
        if self.due_at is None and any(r.before is not None for r in self.reminders):
            errors.append(FieldError("reminders", "a reminder 'before' the due date needs a due_at"))
        if errors:
            raise InvalidTask(errors)
        return self


@dataclass(frozen=True)
class SeriesRef:
    """Where an instance of a recurring task stands in its series."""

    id: int
    occurrence: int  # 1 for the task that started the series


@dataclass(frozen=True)
class Series:
    """A recurring task: its schedule and the fields every new instance starts from."""

    id: int
    user_id: str
    schedule: Schedule
    template: TaskFields  # due_at is the series' start; each instance gets its own
    ended_at: datetime | None = None

    def instance_fields(self, due_at: datetime) -> TaskFields:
        """The fields of an instance due at ``due_at``; absolute reminders move with the due date."""
        shift = due_at - self.template.due_at if self.template.due_at is not None else None
        reminders = tuple(
            r if r.at is None or shift is None else Reminder(at=r.at + shift) for r in self.template.reminders
        )
        return replace(self.template, due_at=due_at, reminders=reminders)


@dataclass(frozen=True)
class Task:
    id: int
    user_id: str
    fields: TaskFields
    status: Status
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    series: SeriesRef | None = None
    skipped: bool = False

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def revise(self, fields: TaskFields, now: datetime) -> Task:
        return replace(self, fields=fields.check(), updated_at=now, version=self.version + 1)

    def complete(self, now: datetime) -> Task:
        if self.status is Status.COMPLETED:
            return self
        return replace(
            self, status=Status.COMPLETED, completed_at=now, updated_at=now, version=self.version + 1
        )

    def skip(self, now: datetime) -> Task:
        """Close this instance of a series without doing it; the series moves on as on completion."""
        if self.series is None:
            raise InvalidTask([FieldError("recurrence", "only an instance of a recurring task can be skipped")])
        if self.status is Status.COMPLETED:
            return self
        return replace(self.complete(now), skipped=True)

    def reopen(self, now: datetime) -> Task:
        if self.status is Status.OPEN:
            return self
        return replace(self, status=Status.OPEN, completed_at=None, skipped=False, updated_at=now,
                       version=self.version + 1)

    def to_json(self) -> dict[str, Any]:
        f = self.fields
        return {
            "id": self.id,
            "title": f.title,
            "description": f.description,
            "status": self.status.value,
            "priority": f.priority.label,
            "tags": list(f.tags),
            "due_at": iso(f.due_at),
            "timezone": f.timezone,
            "recurrence": f.recurrence.to_json() if f.recurrence else None,
            "reminders": [r.to_json() for r in f.reminders],
            "completed_at": iso(self.completed_at),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "version": self.version,
            "series": None if self.series is None else {"id": self.series.id, "occurrence": self.series.occurrence},
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class TaskEvent:
    """A change of a task, as published on ``task-events``.

    It carries what a consumer needs to apply it whenever it arrives, since arrival order is not commit
    order (a broker may reorder): the task after the change, whose ``version`` orders a task's events (a
    deletion carries the last version), and for an update or a completion the ``changes`` the writer saw
    between the task it read and the task it wrote, in the same transaction.
    """

    event_type: EventType
    task: Task
    timestamp: datetime
    before: Task | None = None  # the task as the transaction read it (updated, completed)

    def data(self) -> dict[str, Any]:
        after = self.task.to_json()
        return {
            "event_type": self.event_type,
            "task_id": self.task.id,
            "task_data": after,
            "user_id": self.task.user_id,
            "timestamp": iso(self.timestamp),
            **({"changes": diff(self.before.to_json(), after)}
               if self.before is not None and self.event_type in ("updated", "completed") else {}),
        }


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields whose values differ, each as ``{"from": old, "to": new}`` (absent reads as null)."""
    return {
        name: {"from": before.get(name), "to": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, microseconds only when present."""
    if value is None:
        return None
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def normalize_tags(tags: list[str]) -> tuple[str, ...]:
    """Tags compare case-insensitively: keep the first spelling of each, lower-cased, in order."""
    seen: dict[str, None] = {}
    for tag in tags:
        seen.setdefault(tag.strip().lower(), None)
    return tuple(seen)
