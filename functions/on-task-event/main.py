"""on-task-event: recurring tasks move on. A completed, skipped or deleted instance gets its next one."""

from __future__ import annotations

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.edge.events import EventFunction, IncomingEvent, Poison
from todo.edge.schemas import closed_instance
from todo.runtime import Runtime
from todo.service import series
from todo.service.tasks import Context


def handle(runtime: Runtime, event: IncomingEvent) -> None:
    try:
        closed = closed_instance(event.id, event.source, event.type, event.data)
    except ValueError as exc:  # pydantic's ValidationError too: the shape is wrong, a retry cannot help
        raise Poison.of(exc) from exc
    if closed is not None:
        series.advance(runtime.writing_uow(), Context(closed.user_id, "on-task-event", runtime.now()), closed)


# It writes tasks, so it also answers the outbox sweep tick (todo.routes.TICKS), like create-task.
fn = EventFunction("on-task-event", handle)


@aio.http
async def on_task_event(request: Request) -> Response:
    return await fn(request)
