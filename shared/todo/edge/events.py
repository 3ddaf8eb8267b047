"""The edge of the event functions: CloudEvents in, the delivery contract out.

Two deliverers POST events to our functions, and both forms are accepted:

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

Functions use the functions-framework ``http`` signature rather than ``cloud_event``: the latter
answers 400 for anything that is not a CloudEvent (a Dapr cron tick) and cannot say ``DROP``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..routes import HEALTH_PATH
from ..runtime import Runtime, get_runtime

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


def parse(headers: Mapping[str, str], body: bytes) -> IncomingEvent:
    """Read either delivery form into one event; raise :class:`Poison` for anything else."""
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if "ce-id" in headers:
        attributes: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        data = _json(body) if body else None
        if attributes.get("type") == KNATIVE_KAFKA_TYPE and isinstance(data, dict) and _is_cloud_event(data):
            return _structured(data, via="knative")  # a plain record whose value is our CloudEvent
        attributes["data"] = data
        return _from_attributes(attributes, via="knative")
    if content_type == STRUCTURED or content_type == "application/json":
        event = _json(body)
        if not isinstance(event, dict) or not _is_cloud_event(event):
            raise Poison("the body is not a CloudEvent")
        return _structured(event, via="dapr")
    raise Poison(f"not a CloudEvent (content-type {content_type or 'missing'})")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Poison(f"malformed JSON: {exc}") from exc


def _is_cloud_event(value: dict[str, Any]) -> bool:
    return all(isinstance(value.get(k), str) and value[k] for k in _REQUIRED)


def _structured(event: dict[str, Any], via: str) -> IncomingEvent:
    data = event.get("data")
    if data is None and "data_base64" in event:
        raise Poison("binary data is not expected on these topics")
    if isinstance(data, str) and str(event.get("datacontenttype", "")).startswith("application/json"):
        data = _json(data.encode())  # some publishers double-encode JSON data as a string
    return _from_attributes({**event, "data": data}, via)


def _from_attributes(attributes: dict[str, Any], via: str) -> IncomingEvent:
    for name in _REQUIRED:
        if not isinstance(attributes.get(name), str) or not attributes[name]:
            raise Poison(f"the CloudEvent has no {name}")
    if attributes["specversion"] != "1.0":
        raise Poison(f"unsupported specversion {attributes['specversion']!r}")
    return IncomingEvent(
        id=attributes["id"], source=attributes["source"], type=attributes["type"],
        subject=attributes.get("subject"), time=attributes.get("time"), data=attributes.get("data"),
        via=via, attributes={k: v for k, v in attributes.items() if k != "data"},
    )


# -- the function side ---------------------------------------------------------------------------

EventHandler = Callable[[Runtime, IncomingEvent], None]
TickHandler = Callable[[Runtime], Any]


def done(via: str) -> Response:
    return JSONResponse({"status": "SUCCESS"}) if via == "dapr" else Response(status_code=200)


def poison(via: str, reason: str) -> Response:
    if via == "dapr":
        return JSONResponse({"status": "DROP", "reason": reason})
    return JSONResponse({"status": "DROP", "reason": reason}, status_code=400)


def retry(reason: str) -> Response:
    return JSONResponse({"status": "RETRY", "reason": reason}, status_code=500)


class EventFunction:
    """Entry of an event function: CloudEvents on ``events_path``; a tick of the Dapr cron binding
    named ``<name>`` arrives as ``POST /<name>`` with an empty body (not a CloudEvent)."""

    def __init__(self, name: str, handle: EventHandler, *, events_path: str = "/events",
                 ticks: Mapping[str, TickHandler] | None = None) -> None:
        self.name = name
        self.handle = handle
        self.events_path = events_path
        self.ticks = dict(ticks or {})

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return JSONResponse({"status": "ok", "function": self.name})
        tick = self.ticks.get(path.removeprefix("/"))
        if tick is not None:
            if request.method == "OPTIONS":  # daprd probes each cron binding's route at start-up
                return Response(status_code=200)
            if request.method != "POST":
                return Response(status_code=405, headers={"Allow": "POST, OPTIONS"})
            result = await run_in_threadpool(tick, get_runtime())
            return JSONResponse({"status": "ok", "result": result})
        if path not in (self.events_path, "/"):
            return Response(status_code=404)
        if request.method != "POST":
            return Response(status_code=405, headers={"Allow": "POST"})
        body = await request.body()
        try:
            event = parse(request.headers, body)
        except Poison as exc:
            via = "knative" if "ce-id" in request.headers else "dapr"
            log.warning("poison event", extra={"function": self.name, "reason": str(exc)})
            return poison(via, str(exc))
        return await run_in_threadpool(self._process, event)

    def _process(self, event: IncomingEvent) -> Response:
        extra = {"function": self.name, "ce_id": event.id, "ce_source": event.source, "ce_type": event.type}
        try:
            self.handle(get_runtime(), event)
        except Poison as exc:
            log.warning("poison event", extra={**extra, "reason": str(exc)})
            return poison(event.via, str(exc))
        except Exception as exc:
            log.exception("event failed; asking for redelivery", extra=extra)
            return retry(type(exc).__name__)
        return done(event.via)
