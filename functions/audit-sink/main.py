"""audit-sink: the compliance audit trail. Each task and reminder event, once, on a hash chain."""

from __future__ import annotations

from collections.abc import Sequence

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.domain.audit import Occurrence
from todo.edge.events import EventFunction, IncomingEvent, Poison
from todo.edge.schemas import audited_occurrence
from todo.runtime import Runtime
from todo.service import audit


def handle_batch(runtime: Runtime, events: Sequence[IncomingEvent]) -> list[Exception | None]:
    """Every well-formed event of a delivery on the chain in one transaction; the others are poison."""
    outcomes: list[Exception | None] = []
    occurrences: list[Occurrence] = []
    for event in events:
        try:
            occurrences.append(audited_occurrence(event.id, event.source, event.type, event.time, event.data))
            outcomes.append(None)
        except ValueError as exc:  # pydantic's ValidationError too: the shape is wrong, a retry cannot help
            outcomes.append(Poison.of(exc))
    if occurrences:
        audit.record_many(runtime.audit_uow(), occurrences, runtime.now())
    return outcomes


fn = EventFunction("audit-sink", handle_batch=handle_batch)


@aio.http
async def audit_sink(request: Request) -> Response:
    return await fn(request)
