"""on-reminder: the notifications of each triggered reminder, and the reminder scan that triggers them."""

from __future__ import annotations

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
        raise Poison.of(exc) from exc
    if reminder is not None:
        reminders.notify(runtime.uow(), runtime.channels, reminder, runtime.now())


# Its ticks (the reminder scan, the outbox sweep) come from todo.routes.TICKS.
fn = EventFunction("on-reminder", handle)


@aio.http
async def on_reminder(request: Request) -> Response:
    return await fn(request)
