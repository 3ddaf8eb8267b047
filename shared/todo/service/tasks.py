"""Use cases on tasks. Each runs in one unit of work and records its event in the outbox."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from ..domain.errors import TaskNotFound, VersionMismatch
from ..domain.task import EventType, Status, Task, TaskEvent, TaskFields
from .events import OutgoingEvent, task_cloud_event
from .queries import TaskQuery


class TaskRepository(Protocol):
    def add(self, user_id: str, fields: TaskFields, now: datetime) -> Task: ...
    def save(self, task: Task) -> None: ...
    def remove(self, task: Task) -> None: ...
    def get(self, user_id: str, task_id: int, *, for_update: bool = False) -> Task | None: ...
    def find(self, query: TaskQuery) -> tuple[list[Task], str | None]: ...
    def tags(self, user_id: str) -> list[tuple[str, int]]: ...


class Outbox(Protocol):
    def add(self, event: OutgoingEvent, now: datetime) -> None: ...


class UnitOfWork(Protocol):
    @property
    def tasks(self) -> TaskRepository: ...
    @property
    def outbox(self) -> Outbox: ...

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...
    def commit(self) -> None: ...


@dataclass(frozen=True)
class Context:
    """Who acts, through which function, at what time."""

    user_id: str
    function_name: str
    now: datetime


Change = Callable[[Task], Task]


def create_task(uow: UnitOfWork, ctx: Context, fields: TaskFields) -> Task:
    fields.check()
    with uow:
        task = uow.tasks.add(ctx.user_id, fields, ctx.now)
        _record(uow, ctx, "created", task)
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
                if_match: Collection[int] | None = None) -> Task:
    """Apply ``change`` to the caller's task; a change that changes nothing writes nothing."""
    with uow:
        before = _load(uow, ctx, task_id, if_match)
        after = change(before)
        if after == before:
            return before
        uow.tasks.save(after)
        completed = before.status is Status.OPEN and after.status is Status.COMPLETED
        _record(uow, ctx, "completed" if completed else "updated", after)
        uow.commit()
    return after


def delete_task(uow: UnitOfWork, ctx: Context, task_id: int, if_match: Collection[int] | None = None) -> None:
    with uow:
        task = _load(uow, ctx, task_id, if_match)
        uow.tasks.remove(task)
        _record(uow, ctx, "deleted", task)
        uow.commit()


def _load(uow: UnitOfWork, ctx: Context, task_id: int, if_match: Collection[int] | None) -> Task:
    task = uow.tasks.get(ctx.user_id, task_id, for_update=True)
    if task is None:
        raise TaskNotFound(task_id)
    if if_match is not None and task.version not in if_match:
        raise VersionMismatch(current=task.version)
    return task


def _record(uow: UnitOfWork, ctx: Context, event_type: EventType, task: Task) -> None:
    event = TaskEvent(event_type, task, ctx.now)
    uow.outbox.add(task_cloud_event(event, ctx.function_name), ctx.now)
