"""Reminders fire once and on time, and reach people through every channel they chose.

The scan claims due reminders (``triggered``) and publishes one ``triggered`` event each, in one
transaction. on-reminder consumes those events and notifies: each channel on its own, each attempt
recorded, at most one delivery per reminder and channel however often the event comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .. import metrics, tracing
from ..domain.errors import TaskNotFound
from ..domain.reminders import NotificationSettings
from ..domain.task import Status
from .events import reminder_cloud_event
from .tasks import Context, UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Triggered:
    """A reminder to send, as the triggered event tells it."""

    reminder_id: int
    user_id: str
    task_id: int
    title: str
    due_at: datetime | None
    remind_at: datetime


@dataclass(frozen=True)
class Attempt:
    ok: bool
    detail: str | None = None


class Channels(Protocol):
    def send(self, channel: str, settings: NotificationSettings, reminder: Triggered) -> list[Attempt]:
        """Try ``channel`` (retrying as it sees fit); every attempt, in order."""
        ...


def scan(uow: UnitOfWork, function_name: str, now: datetime, limit: int = 1000) -> int:
    """Trigger every due reminder; safe with duplicate ticks and concurrent scanners."""
    return _scan(uow, function_name, now, limit)[0]


def fire_until(new_uow: Callable[[], UnitOfWork], function_name: str, clock: Callable[[], datetime],
               until: datetime, sleep: Callable[[float], None], resolution: float = 0.05) -> int:
    """Trigger reminders as they fall due until ``until`` (when the next tick comes); returns how many.

    A scan per tick alone would leave each reminder up to a whole period late (a second on the real
    stack, a minute under a PingSource): in between, this sleeps until the next reminder is due and
    claims it then, no more often than every ``resolution`` seconds.
    """
    fired = 0
    while True:
        count, upcoming = _scan(new_uow(), function_name, clock())
        fired += count
        if upcoming is None or upcoming >= until:
            return fired
        sleep(max(resolution, (upcoming - clock()).total_seconds()))


def _scan(uow: UnitOfWork, function_name: str, now: datetime,
          limit: int = 1000) -> tuple[int, datetime | None]:
    """How many reminders were triggered, and when the next scheduled one is due (same transaction)."""
    with uow:
        due = uow.reminders.claim_due(now, limit)
        events = []
        for reminder in due:
            task = uow.tasks.get(reminder.user_id, reminder.task_id)
            if task is None or task.status is not Status.OPEN:
                continue
            events.append(reminder_cloud_event("triggered", task, reminder.remind_at, now, function_name,
                                               reminder_id=reminder.id))
        if events:  # the reminders' trace starts here: the tick that found them is not traced (edge/http.py)
            with tracing.span("trigger reminders", attributes={"todo.reminders": len(events)}):
                uow.outbox.add(events, now)
        upcoming = uow.reminders.next_due()
        uow.commit()
    for reminder in due:  # fire time - due time: what TodoRemindersLate watches
        metrics.REMINDER_LATENESS.observe(max(0.0, (now - reminder.remind_at).total_seconds()),
                                          function=function_name)
    if due:
        log.info("reminders triggered", extra={"count": len(due)})
    return len(due), upcoming


def notify(uow: UnitOfWork, channels: Channels, reminder: Triggered, now: datetime,
           function_name: str = "on-reminder") -> dict[str, bool]:
    """Send on every channel of the user that has not delivered this reminder yet, each in its own span."""
    with uow:
        settings = uow.reminders.settings(reminder.user_id)
    outcome: dict[str, bool] = {}
    for channel in settings.channels():
        with uow:
            if uow.reminders.delivered(reminder.reminder_id, channel):
                outcome[channel] = True
                continue
        kind = channel.partition(":")[0]  # "webhook:<id>": the kind only, a bounded label
        with tracing.span(f"notify {kind}", kind="client", attributes={"todo.reminder_id": reminder.reminder_id}):
            attempts = channels.send(channel, settings, reminder)  # outside any transaction: it may be slow
        with uow:
            for number, attempt in enumerate(attempts, start=1):
                uow.reminders.record_attempt(reminder.reminder_id, channel, number, attempt.ok, attempt.detail, now)
            uow.commit()
        outcome[channel] = any(a.ok for a in attempts)
        metrics.NOTIFICATIONS.inc(function=function_name, channel=kind,
                                  outcome="sent" if outcome[channel] else "failed")
        if not outcome[channel]:
            log.warning("notification failed", extra={
                "reminder_id": reminder.reminder_id, "task_id": reminder.task_id, "user_id": reminder.user_id,
                "channel": kind, "attempts": len(attempts),
                "reason": attempts[-1].detail if attempts else None})
    return outcome


def snooze(uow: UnitOfWork, ctx: Context, task_id: int, until: datetime) -> datetime:
    with uow:
        task = uow.tasks.get(ctx.user_id, task_id, for_update=True)
        if task is None:
            raise TaskNotFound(task_id)
        uow.reminders.snooze(task.user_id, task.id, until, ctx.now)
        uow.outbox.add([reminder_cloud_event("scheduled", task, until, ctx.now, ctx.function_name)], ctx.now)
        uow.commit()
    return until


def settings_of(uow: UnitOfWork, user_id: str) -> NotificationSettings:
    with uow:
        return uow.reminders.settings(user_id)


def save_settings(uow: UnitOfWork, ctx: Context, settings: NotificationSettings) -> NotificationSettings:
    with uow:
        uow.reminders.save_settings(ctx.user_id, settings, ctx.now)
        uow.commit()
    return settings
