"""update-task: every write on an existing task (PATCH, DELETE, complete, reopen)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.domain.errors import FieldError
from todo.domain.task import Task, iso
from todo.edge.http import Call, HttpFunction, Reply
from todo.edge.problems import invalid
from todo.edge.schemas import NotificationSettingsIn, ScopeIn, SnoozeIn, settings_json
from todo.edge.tasks_api import patch_change, task_reply
from todo.service import reminders, tasks

fn = HttpFunction("update-task")


@fn.handler("updateTask")
def update(call: Call) -> Reply:
    ctx = call.context()
    scope = call.query_model(ScopeIn).scope
    change = patch_change(call.json(), ctx.now)
    task = tasks.change_task(call.runtime.writing_uow(), ctx, call.task_id(), change, call.if_match(), scope)
    return task_reply(task)


def transition(call: Call, step: Callable[[Task, datetime], Task]) -> Reply:
    ctx = call.context()
    task = tasks.change_task(call.runtime.writing_uow(), ctx, call.task_id(), lambda t: step(t, ctx.now),
                             call.if_match())
    return task_reply(task)


@fn.handler("completeTask")
def complete(call: Call) -> Reply:
    return transition(call, Task.complete)


@fn.handler("reopenTask")
def reopen(call: Call) -> Reply:
    return transition(call, Task.reopen)


@fn.handler("skipTask")
def skip(call: Call) -> Reply:
    return transition(call, Task.skip)


@fn.handler("snoozeTask")
def snooze(call: Call) -> Reply:
    ctx = call.context()
    try:
        until = call.model(SnoozeIn).until_from(ctx.now)
    except ValueError as exc:
        raise invalid([FieldError("until", str(exc))]) from exc
    remind_at = reminders.snooze(call.runtime.writing_uow(), ctx, call.task_id(), until)
    return Reply({"task_id": call.task_id(), "remind_at": iso(remind_at)})


@fn.handler("putNotificationSettings")
def put_notification_settings(call: Call) -> Reply:
    # Imported here: the notification channels load httpx and smtplib (~20 ms of every cold start).
    from todo.adapters.channels import new_webhook_secret

    chosen = call.model(NotificationSettingsIn).to_domain(new_webhook_secret)
    return Reply(settings_json(reminders.save_settings(call.runtime.uow(), call.context(), chosen)))


@fn.handler("deleteTask")
def delete(call: Call) -> Reply:
    scope = call.query_model(ScopeIn).scope
    tasks.delete_task(call.runtime.writing_uow(), call.context(), call.task_id(), call.if_match(), scope)
    return Reply(status=204)


@aio.http
async def update_task(request: Request) -> Response:
    return await fn(request)
