"""Use cases on tasks. Each runs in one unit of work and records its event in the outbox."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from ..domain.errors import FieldError, InvalidTask, TaskNotFound, VersionMismatch
from ..domain.recurrence import Schedule
from ..domain.reminders import DueReminder, NotificationSettings, PlannedReminder, plan
from ..domain.task import EventType, Series, SeriesRef, Status, Task, TaskEvent, TaskFields, iso
from ..domain.text import first_unstorable
from .events import OutgoingEvent, reminder_cloud_event, task_cloud_event
from .queries import TaskQuery


class TaskRepository(Protocol):
    def add(self, user_id: str, fields: TaskFields, now: datetime, series: SeriesRef | None = None) -> Task: ...
    def start_series(self, user_id: str, fields: TaskFields, now: datetime) -> int: ...
    def get_series(self, series_id: int, *, for_update: bool = False) -> Series | None: ...
    def save_series(self, series: Series) -> None: ...
    def add_instance(self, series: Series, occurrence: int, due_at: datetime, now: datetime) -> Task | None: ...
    def latest_occurrence(self, series_id: int) -> int: ...
    def save(self, task: Task) -> None: ...
    def remove(self, task: Task) -> None: ...
    def get(self, user_id: str, task_id: int, *, for_update: bool = False) -> Task | None: ...
    def find(self, query: TaskQuery) -> tuple[list[Task], str | None]: ...
    def tags(self, user_id: str) -> list[tuple[str, int]]: ...


class ReminderStore(Protocol):
    def replan(self, user_id: str, task_id: int, planned: list[PlannedReminder],
               now: datetime) -> list[PlannedReminder]: ...
    def cancel(self, task_id: int) -> None: ...
    def snooze(self, user_id: str, task_id: int, at: datetime, now: datetime) -> None: ...
    def claim_due(self, now: datetime, limit: int) -> list[DueReminder]: ...
    def next_due(self) -> datetime | None: ...
    def settings(self, user_id: str) -> NotificationSettings: ...
    def save_settings(self, user_id: str, settings: NotificationSettings, now: datetime) -> None: ...
    def delivered(self, reminder_id: int, channel: str) -> bool: ...
    def record_attempt(self, reminder_id: int, channel: str, attempt: int, ok: bool, detail: str | None,
                       now: datetime) -> bool: ...


class ChangeFeed(Protocol):
    def append(self, user_id: str, message: dict[str, Any], now: datetime, event_id: str | None = None) -> None:
        """Number the user's message in commit order, keep it, and queue its push event."""
        ...

    def since(self, user_id: str, after: int, limit: int) -> list[dict[str, Any]]: ...
    def last(self, user_id: str) -> int: ...


class Outbox(Protocol):
    def add(self, events: Sequence[OutgoingEvent], now: datetime) -> None: ...


class UnitOfWork(Protocol):
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def reminders(self) -> ReminderStore: ...
    @property
    def changes(self) -> ChangeFeed: ...

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def commit(self) -> None: ...
    def claim(self, consumer: str, source: str, event_id: str, now: datetime) -> bool:
        """True the first time this consumer sees the event (see todo.adapters.idempotency)."""
        ...


@dataclass(frozen=True)
class Context:
    """Who acts, through which function, at what time."""

    user_id: str
    function_name: str
    now: datetime


Change = Callable[[Task], Task]
Scope = Literal["instance", "series"]


def create_task(uow: UnitOfWork, ctx: Context, fields: TaskFields) -> Task:
    fields.check()
    with uow:
        task = uow.tasks.add(ctx.user_id, fields, ctx.now)
        record_event(uow, ctx, "created", task)
        uow.commit()
    return task


def get_task(uow: UnitOfWork, ctx: Context, task_id: int) -> Task:
    with uow:
        task = uow.tasks.get(ctx.user_id, task_id)
    if task is None:
        raise TaskNotFound(task_id)
    return task


def list_tasks(uow: UnitOfWork, query: TaskQuery) -> tuple[list[Task], str | None]:
    with uow:
        return uow.tasks.find(query)


def list_tags(uow: UnitOfWork, ctx: Context) -> list[tuple[str, int]]:
    with uow:
        return uow.tasks.tags(ctx.user_id)


def change_task(uow: UnitOfWork, ctx: Context, task_id: int, change: Change,
                if_match: Collection[int] | None = None, scope: Scope = "instance") -> Task:
    """Apply ``change`` to the caller's task; a change that changes nothing writes nothing.

    On an instance of a recurring task, ``scope="series"`` also makes the change the template of the
    instances to come (this and future); the default changes this instance only.
    """
    with uow:
        before = _load(uow, ctx, task_id, if_match)
        after = change(before)
        if after == before:
            return before
        after = _follow_series(uow, ctx, before, after, scope)
        uow.tasks.save(after)
        completed = before.status is Status.OPEN and after.status is Status.COMPLETED
        record_event(uow, ctx, "completed" if completed else "updated", after, before=before)
        uow.commit()
    return after


def delete_task(uow: UnitOfWork, ctx: Context, task_id: int, if_match: Collection[int] | None = None,
                scope: Scope = "instance") -> None:
    """Delete the caller's task. Deleting one instance lets its series go on; ``scope="series"``
    ends the series with it."""
    with uow:
        task = _load(uow, ctx, task_id, if_match)
        if scope == "series" and task.series is not None:
            _end_series(uow, task.series.id, ctx.now)
        uow.tasks.remove(task)
        record_event(uow, ctx, "deleted", task)
        uow.commit()


def _follow_series(uow: UnitOfWork, ctx: Context, before: Task, after: Task, scope: Scope) -> Task:
    rule = after.fields.recurrence
    if before.series is None:  # made recurring by this change: it starts a series as its first instance
        if rule is None:
            return after
        return replace(after, series=SeriesRef(uow.tasks.start_series(ctx.user_id, after.fields, ctx.now), 1))
    if scope == "instance" and rule == before.fields.recurrence:
        return after
    # The rule belongs to the series whatever the scope: removing it ends the series, changing it
    # restarts the series from this instance. The other fields become the template only with
    # scope=series (this and future).
    if rule is None:
        _end_series(uow, before.series.id, ctx.now)
        return after
    series = uow.tasks.get_series(before.series.id, for_update=True)
    assert series is not None and after.fields.due_at is not None
    schedule = Schedule(rule.rrule, rule.anchor, after.fields.timezone, after.fields.due_at)
    template = after.fields if scope == "series" else replace(series.template, recurrence=rule)
    uow.tasks.save_series(replace(series, schedule=schedule, template=template, ended_at=None))
    return after


def _end_series(uow: UnitOfWork, series_id: int, now: datetime) -> None:
    series = uow.tasks.get_series(series_id, for_update=True)
    if series is not None and series.ended_at is None:
        uow.tasks.save_series(replace(series, ended_at=now))


def _load(uow: UnitOfWork, ctx: Context, task_id: int, if_match: Collection[int] | None) -> Task:
    task = uow.tasks.get(ctx.user_id, task_id, for_update=True)
    if task is None:
        raise TaskNotFound(task_id)
    if if_match is not None and task.version not in if_match:
        raise VersionMismatch(current=task.version)
    return task


def record_event(uow: UnitOfWork, ctx: Context, event_type: EventType, task: Task,
                 before: Task | None = None) -> None:
    """The task's event, and its reminders brought in line with it, in the caller's transaction.

    ``before`` is the task as this transaction read it (an update, a completion): the event carries what
    changed, so that a consumer need not rebuild it from events that may arrive in another order.
    Every committed change passes here, so here is where a change the audit trail could not keep is
    refused (the transaction is then rolled back): its event would be lost to the trail."""
    as_json = task.to_json()
    found = first_unstorable(task.user_id, "user") or first_unstorable(as_json)
    if found is not None:
        raise InvalidTask([FieldError(*found)])
    events = [task_cloud_event(TaskEvent(event_type, task, ctx.now, before), ctx.function_name)]
    if event_type == "deleted" or task.status is not Status.OPEN:
        uow.reminders.cancel(task.id)  # snoozes too: nothing reminds of a closed task
    else:
        planned = plan(task, ctx.now)
        added: list[PlannedReminder] = []
        if planned or event_type != "created":  # a new task without reminders has none to reconcile
            added = uow.reminders.replan(task.user_id, task.id, planned, ctx.now)
        events += [reminder_cloud_event("scheduled", task, reminder.remind_at, ctx.now, ctx.function_name)
                   for reminder in added]
    uow.outbox.add(events, ctx.now)  # one statement for all of them, in this order
    message = {"type": f"task.{event_type}", "task": as_json, "time": iso(ctx.now)}
    uow.changes.append(task.user_id, message, ctx.now)  # numbered, kept, and its push event queued after them
