"""on-reminder: the reminder scan (scheduled tick) and the notifications of each triggered reminder."""

from __future__ import annotations

import time
from datetime import timedelta

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.edge.events import EventFunction, IncomingEvent, Poison
from todo.edge.schemas import triggered_reminder
from todo.runtime import Runtime
from todo.service import reminders


def handle(runtime: Runtime, event: IncomingEvent) -> None:
    try:
        reminder = triggered_reminder(event.type, event.data)
    except ValueError as exc:  # pydantic's ValidationError too: the shape is wrong, a retry cannot help
        raise Poison(str(exc)) from exc
    if reminder is not None:
        reminders.notify(runtime.uow(), runtime.channels, reminder, runtime.now())


def scan(runtime: Runtime) -> int:
    until = runtime.now() + timedelta(seconds=runtime.settings.reminder_window_seconds)
    return reminders.fire_until(runtime.writing_uow, "on-reminder", runtime.now, until, time.sleep)


fn = EventFunction("on-reminder", handle,
                   ticks={"reminder-scan": scan, "outbox-sweep": lambda runtime: runtime.relay.drain()})


@aio.http
async def on_reminder(request: Request) -> Response:
    return await fn(request)
