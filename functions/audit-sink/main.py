"""audit-sink: the compliance audit trail. Each task and reminder event, once, on a hash chain."""

from __future__ import annotations

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.edge.events import EventFunction, IncomingEvent, Poison
from todo.edge.schemas import audited_occurrence
from todo.runtime import Runtime
from todo.service import audit


def handle(runtime: Runtime, event: IncomingEvent) -> None:
    try:
        occurrence = audited_occurrence(event.id, event.source, event.type, event.time, event.data)
    except ValueError as exc:  # pydantic's ValidationError too: the shape is wrong, a retry cannot help
        raise Poison(str(exc)) from exc
    audit.record(runtime.audit_uow(), occurrence, runtime.now())


fn = EventFunction("audit-sink", handle)


@aio.http
async def audit_sink(request: Request) -> Response:
    return await fn(request)
