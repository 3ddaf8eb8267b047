"""When a task's reminders fire, and what a person asked to be notified by."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .task import Status, Task

SNOOZE = "snooze"


@dataclass(frozen=True)
class PlannedReminder:
    spec: str  # the index of the task's reminder ("0", "1", …) or "snooze"
    remind_at: datetime


def plan(task: Task, now: datetime) -> list[PlannedReminder]:
    """The reminders an open task still has to fire; a completed task has none, nor has the past."""
    if task.status is not Status.OPEN:
        return []
    planned = []
    for index, reminder in enumerate(task.fields.reminders):
        if reminder.before is not None:
            if task.fields.due_at is None:
                continue
            at = task.fields.due_at - reminder.before
        else:
            assert reminder.at is not None
            at = reminder.at
        if at > now:
            planned.append(PlannedReminder(str(index), at))
    return sorted(planned, key=lambda p: (p.remind_at, p.spec))


@dataclass(frozen=True)
class DueReminder:
    id: int
    user_id: str
    task_id: int
    remind_at: datetime


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str  # "whsec_" + base64, as Standard Webhooks has it


@dataclass(frozen=True)
class NotificationSettings:
    in_app: bool = True
    email: str | None = None
    webhooks: tuple[Webhook, ...] = field(default_factory=tuple)

    def channels(self) -> list[str]:
        """Stable names: one delivery per reminder and name."""
        names = ["in_app"] if self.in_app else []
        if self.email:
            names.append(f"email:{self.email}")
        names += [f"webhook:{w.url}" for w in self.webhooks]
        return names
