"""The edge of the event functions: CloudEvents in, the delivery contract out.

Two deliverers POST events to our functions, and both forms are accepted (read by the CloudEvents SDK,
which functions-framework loads anyway):

* **daprd** (real stack, and the in-process bus that imitates it): a structured CloudEvent,
  ``application/cloudevents+json``. We publish our events *as* CloudEvents, so daprd keeps our
  ``id``/``source``/``type`` and only adds ``topic``, ``pubsubname`` and trace fields.
* **Knative KafkaSource** (cluster): a binary-mode CloudEvent (``ce-*`` headers). A record that
  already is a CloudEvent arrives with its own attributes; a plain record arrives as
  ``dev.knative.kafka.event`` with the record value as ``data`` — if that value is one of our
  structured CloudEvents, it is unwrapped here.

The delivery contract, in one place:

=============  =====================================  ==============================================
outcome        daprd                                  KafkaSource
=============  =====================================  ==============================================
done           200 ``{"status": "SUCCESS"}``           200
duplicate      200 ``{"status": "SUCCESS"}`` (no-op)   200 (no-op)
poison         200 ``{"status": "DROP"}`` → dead letter 400: not retried → ``deadLetterSink``
retryable      500 → redelivered with backoff          500 → redelivered with backoff
=============  =====================================  ==============================================

daprd may also deliver in **bulk** (the subscription's ``bulkSubscribe``): one POST whose JSON body
holds ``entries``, each an ``entryId`` and its ``event``; the answer is 200 with a ``statuses`` list
(``SUCCESS`` / ``DROP`` / ``RETRY`` per entry). Every function takes both; each entry gets the
outcome it would have had alone.

Functions use the functions-framework ``http`` signature rather than ``cloud_event``: the latter
answers 400 for anything that is not a CloudEvent (a Dapr cron tick) and cannot say ``DROP``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_dict, from_http
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import logs
from ..routes import HEALTH_PATH, ticks_of
from ..runtime import Runtime
from .function import RuntimeBound
from .threads import in_thread
from .ticks import HANDLERS

log = logging.getLogger(__name__)

KNATIVE_KAFKA_TYPE = "dev.knative.kafka.event"
STRUCTURED = "application/cloudevents+json"
_REQUIRED = ("id", "source", "type", "specversion")


class Poison(Exception):
    """This event can never be processed: dead-letter it, do not retry."""


@dataclass(frozen=True)
class IncomingEvent:
    id: str
    source: str
    type: str
    subject: str | None
    time: str | None
    data: Any
    via: str  # "dapr" or "knative": decides how the contract is spoken
    attributes: Mapping[str, Any]


BulkEntry = tuple[str, IncomingEvent | Poison]
"""An entry of a daprd bulk delivery: its ``entryId``, and its event or why it is poison."""


def read(headers: Mapping[str, str], body: bytes) -> IncomingEvent | list[BulkEntry]:
    """A delivery: one event (either form, see :func:`parse`) or the entries of a daprd bulk, whose
    body is plain JSON holding ``entries``. The body is decoded once."""
    if not _binary(headers) and _content_type(headers) == "application/json":
        value = _json(body)
        if isinstance(value, dict) and isinstance(value.get("entries"), list) and "specversion" not in value:
            return _bulk_entries(value["entries"])
        return _structured(value, via="dapr")
    return parse(headers, body)


def parse(headers: Mapping[str, str], body: bytes) -> IncomingEvent:
    """Read either delivery form into one event; raise :class:`Poison` for anything else.

    The CloudEvents SDK maps the binary form's ``ce-*`` headers (percent-decoded, ``content-type`` as
    ``datacontenttype``) and the structured form's JSON (``data_base64`` too) to attributes. It fills in
    an ``id`` and a ``time`` that an event lacks, so the required attributes are checked here first: an
    event without an id of its own could never be recognised as a duplicate.
    """
    if _binary(headers):
        lowered = {k.lower(): v for k, v in headers.items()}
        for name in _REQUIRED:
            if not lowered.get(f"ce-{name}"):
                raise Poison(f"the CloudEvent has no {name}")
        _supported(lowered["ce-specversion"])
        try:
            event = from_http(lowered, body or None, data_unmarshaller=_binary_data)
        except GenericException as exc:
            raise Poison(f"not a CloudEvent: {exc}") from exc
        incoming = _incoming(event, via="knative", timed="ce-time" in lowered)
        if incoming.type == KNATIVE_KAFKA_TYPE and isinstance(incoming.data, dict) \
                and _is_cloud_event(incoming.data):
            return _structured(incoming.data, via="knative")  # a plain record whose value is our CloudEvent
        return incoming
    content_type = _content_type(headers)
    if content_type in (STRUCTURED, "application/json"):
        return _structured(_json(body), via="dapr")
    raise Poison(f"not a CloudEvent (content-type {content_type or 'missing'})")


def _binary(headers: Mapping[str, str]) -> bool:
    return any(k.lower() == "ce-id" or k.lower() == "ce-specversion" for k in headers)


def _content_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _bulk_entries(entries: list[Any]) -> list[BulkEntry]:
    found: list[BulkEntry] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("entryId"), str):
            continue  # no id to answer for: daprd retries what it gets no status for
        try:
            found.append((entry["entryId"], _structured(entry.get("event"), via="dapr")))
        except Poison as exc:
            found.append((entry["entryId"], exc))
    return found


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Poison(f"malformed JSON: {exc}") from exc


def _binary_data(body: Any) -> Any:
    """The binary form's body: JSON when it parses, else the bytes (the SDK's unmarshaller contract)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body


def _is_cloud_event(value: dict[str, Any]) -> bool:
    return all(isinstance(value.get(k), str) and value[k] for k in _REQUIRED)


def _supported(specversion: Any) -> None:
    if specversion != "1.0":
        raise Poison(f"unsupported specversion {specversion!r}")


def _structured(value: Any, via: str) -> IncomingEvent:
    if not isinstance(value, dict) or not _is_cloud_event(value):
        raise Poison("the body is not a CloudEvent")
    _supported(value["specversion"])
    if value.get("data") is None and "data_base64" in value:
        raise Poison("binary data is not expected on these topics")
    data = value.get("data")
    if isinstance(data, str) and str(value.get("datacontenttype", "")).startswith("application/json"):
        data = _json(data.encode())  # some publishers double-encode JSON data as a string
    try:
        event = from_dict({**value, "data": data})
    except GenericException as exc:
        raise Poison(f"not a CloudEvent: {exc}") from exc
    return _incoming(event, via, timed="time" in value)


def _incoming(event: CloudEvent, via: str, timed: bool) -> IncomingEvent:
    attributes = dict(event.get_attributes())
    if not timed:
        attributes.pop("time", None)  # the SDK's "now", not the event's
    return IncomingEvent(
        id=attributes["id"], source=attributes["source"], type=attributes["type"],
        subject=attributes.get("subject"), time=attributes.get("time"), data=event.get_data(),
        via=via, attributes=attributes,
    )


# -- the function side ---------------------------------------------------------------------------


def event_context(event: IncomingEvent) -> dict[str, Any]:
    """What a log line says of the event it is about: its ids, its trace, and the task and user it names."""
    data = event.data if isinstance(event.data, dict) else {}
    task_id, user_id = data.get("task_id"), data.get("user_id")
    return {"ce_id": event.id, "ce_source": event.source, "ce_type": event.type,
            "traceparent": event.attributes.get("traceparent"),
            "task_id": task_id if isinstance(task_id, int) else None,
            "user_id": user_id if isinstance(user_id, str) else None}

EventHandler = Callable[[Runtime, IncomingEvent], None]
BatchHandler = Callable[[Runtime, Sequence[IncomingEvent]], Sequence[Exception | None]]
"""Handles events in order and returns an outcome per event: ``None`` (done) or the :class:`Poison`
that rejected it. Raising means none was applied: each event is then tried alone."""

SUCCESS, DROP, RETRY = "SUCCESS", "DROP", "RETRY"


def done(via: str) -> Response:
    return JSONResponse({"status": SUCCESS}) if via == "dapr" else Response(status_code=200)


def poison(via: str, reason: str) -> Response:
    if via == "dapr":
        return JSONResponse({"status": DROP, "reason": reason})
    return JSONResponse({"status": DROP, "reason": reason}, status_code=400)


def retry(reason: str) -> Response:
    return JSONResponse({"status": RETRY, "reason": reason}, status_code=500)


def one_by_one(handle: EventHandler) -> BatchHandler:
    """A batch handler that applies each event on its own: a failure stays with its event."""
    def handle_batch(runtime: Runtime, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        for event in events:
            try:
                handle(runtime, event)
                outcomes.append(None)
            except Exception as exc:
                outcomes.append(exc)
        return outcomes
    return handle_batch


class EventFunction(RuntimeBound):
    """Entry of an event function: CloudEvents on ``events_path`` (one, or a daprd bulk of them); each
    tick that names the function (todo.routes.TICKS) arrives as ``POST /<tick>`` with an empty body.

    Give ``handle`` (one event at a time) or ``handle_batch`` (a bulk in one go, e.g. one
    transaction); a single delivery is a batch of one.
    """

    def __init__(self, name: str, handle: EventHandler | None = None, *, handle_batch: BatchHandler | None = None,
                 events_path: str = "/events", runtime_of: RuntimeBound | None = None) -> None:
        super().__init__(name, runtime_of=runtime_of)
        if handle_batch is None:
            if handle is None:
                raise TypeError("give handle or handle_batch")
            handle_batch = one_by_one(handle)
        elif handle is not None:
            raise TypeError("give handle or handle_batch, not both")
        self.handle_batch = handle_batch
        self.events_path = events_path
        self.ticks = {t.name: HANDLERS[t.name] for t in ticks_of(name)}

    async def __call__(self, request: Request) -> Response:
        with logs.context(function=self.name):
            return await self._serve(request)

    async def _serve(self, request: Request) -> Response:
        path = request.url.path
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return JSONResponse({"status": "ok", "function": self.name})
        tick = self.ticks.get(path.removeprefix("/"))
        if tick is not None:
            if request.method == "OPTIONS":  # daprd probes each cron binding's route at start-up
                return Response(status_code=200)
            if request.method != "POST":
                return Response(status_code=405, headers={"Allow": "POST, OPTIONS"})
            result = await in_thread(tick, self.runtime)
            return JSONResponse({"status": "ok", "result": result})
        if path not in (self.events_path, "/"):
            return Response(status_code=404)
        if request.method != "POST":
            return Response(status_code=405, headers={"Allow": "POST"})
        body = await request.body()
        try:
            event = read(request.headers, body)
        except Poison as exc:
            via = "knative" if _binary(request.headers) else "dapr"
            log.warning("poison event", extra={"reason": str(exc),
                                               "ce_id": request.headers.get("ce-id")})
            return poison(via, str(exc))
        if isinstance(event, list):  # a daprd bulk
            statuses = await in_thread(self._process_bulk, event)
            return JSONResponse({"statuses": [{"entryId": entry_id, "status": status}
                                              for entry_id, status in statuses]})
        outcome = (await in_thread(self._process, [event]))[0]
        if outcome is None:
            return done(event.via)
        if isinstance(outcome, Poison):
            return poison(event.via, str(outcome))
        return retry(type(outcome).__name__)

    def _process_bulk(self, bulk: list[BulkEntry]) -> list[tuple[str, str]]:
        events = [item for _, item in bulk if isinstance(item, IncomingEvent)]
        outcomes = iter(self._process(events))
        statuses = []
        for entry_id, item in bulk:
            if isinstance(item, Poison):
                log.warning("poison event", extra={"reason": str(item), "entry_id": entry_id})
                statuses.append((entry_id, DROP))
                continue
            outcome = next(outcomes)
            statuses.append((entry_id, SUCCESS if outcome is None else DROP if isinstance(outcome, Poison) else RETRY))
        return statuses

    def _process(self, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        with logs.context(**(event_context(events[0]) if len(events) == 1 else {})):
            outcomes = self._apply(events)
        for event, outcome in zip(events, outcomes, strict=True):
            with logs.context(**event_context(event)):
                if isinstance(outcome, Poison):
                    log.warning("poison event", extra={"reason": str(outcome)})
                elif outcome is not None:
                    log.error("event failed; asking for redelivery", exc_info=outcome)
        return outcomes

    def _apply(self, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        """Outcomes per event. A batch that fails as a whole is applied again one event at a time, so
        that one bad event cannot hold back the others."""
        if not events:
            return []
        try:
            return list(self.handle_batch(self.runtime, events))
        except Exception as exc:
            if len(events) == 1:
                return [exc]
            log.warning("batch failed; applying its events one at a time", extra={"events": len(events)},
                        exc_info=exc)
            return [self._apply([event])[0] for event in events]
