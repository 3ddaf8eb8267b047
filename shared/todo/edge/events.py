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

=============  =========================================  ==========================================
outcome        daprd                                      KafkaSource
=============  =========================================  ==========================================
done           200 ``{"status": "SUCCESS"}``               200
duplicate      200 ``{"status": "SUCCESS"}`` (no-op)       200 (no-op)
poison         dead letter published, then 200 SUCCESS;    400 with the reason: not retried →
               200 ``{"status": "DROP"}`` if it could not  ``deadLetterSink`` (Knative keeps the body
               be (daprd forwards the bare event)          as the event's ``knativeerrordata``)
transient      500 → redelivered with backoff              500 → redelivered with backoff
=============  =========================================  ==========================================

Which is which (docs/delivery.md): a failure :func:`todo.adapters.failures.is_transient` knows (the
database unreachable, a serialization failure, a deadlock, a lock or statement timeout) is transient: the
broker's retry budget (dapr-components/resiliency.yaml, the KafkaSource's ``delivery``) is for those. A
:class:`Poison` is poison at once. Any other exception is tried again here, ``attempts`` times in all with a
short backoff, and is then poison: one bad event costs its partition a fraction of a second, not the
broker's minute. Every poison event is also a row of the ``dead_letters`` table (``todo dead-letters``).
Events of one partition key (a user) keep their order: once one of them is to be redelivered, the later
ones of the same delivery wait for it (RETRY) instead of overtaking it.

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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_dict, from_http
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import logs, metrics, tracing
from ..adapters.failures import is_transient
from ..routes import HEALTH_PATH, METRICS_PATH, READY_PATH, SUBSCRIPTIONS, ticks_of
from ..runtime import Runtime
from ..service.dead_letters import DeadLetter, reason_of
from ..service.events import EVENT_TYPES
from .function import RuntimeBound
from .observe import metrics_response, ready
from .threads import in_thread
from .ticks import HANDLERS

log = logging.getLogger(__name__)

KNATIVE_KAFKA_TYPE = "dev.knative.kafka.event"
STRUCTURED = "application/cloudevents+json"
_REQUIRED = ("id", "source", "type", "specversion")
# Every consumer claims an event by its source and id (processed_events): longer ones could never be kept.
_MAX_LENGTHS = {"id": 255, "source": 500}


class Poison(Exception):
    """This event can never be processed: dead-letter it, do not retry.

    ``attempts``: how many times it was tried before giving up; ``raw``: what arrived, when it could not be
    read as an event (a bulk entry, a body).
    """

    def __init__(self, reason: str, attempts: int = 1, raw: Any = None) -> None:
        super().__init__(reason)
        self.attempts = attempts
        self.raw = raw

    @classmethod
    def of(cls, error: ValueError) -> Poison:
        """The poison a validation error makes. A pydantic error says where and what, not the values it saw:
        those are task bodies, which stay out of logs and dead-letter reasons (the letter keeps the event)."""
        reason = str(error)
        describe = getattr(error, "errors", None)
        if callable(describe):
            found = describe(include_input=False, include_url=False)
            reason = f"{getattr(error, 'title', 'data')}: " + "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in found)
        poison = cls(reason)
        poison.__cause__ = error
        return poison


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
            exc.raw = entry.get("event")
            found.append((entry["entryId"], exc))
    return found


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Poison(f"malformed JSON: {exc}") from exc


def _as_received(body: bytes) -> Any:
    """A refused body as a dead letter keeps it: its JSON object when it is one (so its id is known), else
    its text."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", errors="replace")
    return value if isinstance(value, dict) else body.decode("utf-8", errors="replace")


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
    for name, most in _MAX_LENGTHS.items():
        if len(str(attributes[name])) > most:
            raise Poison(f"the CloudEvent's {name} is longer than {most} characters")
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


def order_key(event: IncomingEvent) -> str | None:
    """What an event keeps its order within: its partition key (our events: the user id)."""
    key = event.attributes.get("partitionkey")
    if isinstance(key, str) and key:
        return key
    user_id = event.data.get("user_id") if isinstance(event.data, dict) else None
    return user_id if isinstance(user_id, str) else None


EventHandler = Callable[[Runtime, IncomingEvent], None]
BatchHandler = Callable[[Runtime, Sequence[IncomingEvent]], Sequence[Exception | None]]
"""Handles events in order and returns an outcome per event: ``None`` (done) or the :class:`Poison`
that rejected it. Raising means none was applied: each event is then tried alone."""

SUCCESS, DROP, RETRY = "SUCCESS", "DROP", "RETRY"
LOCAL_ATTEMPTS = 3  # an unexpected exception: tried this often in all, then poison
LOCAL_BACKOFF = (0.05, 0.2)  # seconds before the second and the third attempt


def _traceparent(event: IncomingEvent | Poison | None) -> str | None:
    found = event.attributes.get("traceparent") if isinstance(event, IncomingEvent) else None
    return found if isinstance(found, str) and found else None


class Waiting(Exception):
    """Not applied: an earlier event of the same partition key in this delivery is to be redelivered."""


def done(via: str, reason: str | None = None) -> Response:
    if via != "dapr":
        return Response(status_code=200)
    return JSONResponse({"status": SUCCESS} if reason is None else {"status": SUCCESS, "dead_letter": reason})


def poison(via: str, reason: str) -> Response:
    if via == "dapr":
        return JSONResponse({"status": DROP, "reason": reason})
    return JSONResponse({"status": DROP, "reason": reason}, status_code=400)


def retry(reason: str) -> Response:
    return JSONResponse({"status": RETRY, "reason": reason}, status_code=500)


Verdict = tuple[str, str | None]
"""SUCCESS, DROP or RETRY, and why (for a dead-lettered event: its reason)."""


class EventFunction(RuntimeBound):
    """Entry of an event function: CloudEvents on ``events_path`` (one, or a daprd bulk of them); each
    tick that names the function (todo.routes.TICKS) arrives as ``POST /<tick>`` with an empty body.

    Give ``handle`` (one event at a time) or ``handle_batch`` (a bulk in one go, e.g. one
    transaction); a single delivery is a batch of one.
    """

    def __init__(self, name: str, handle: EventHandler | None = None, *, handle_batch: BatchHandler | None = None,
                 events_path: str = "/events", runtime_of: RuntimeBound | None = None,
                 attempts: int = LOCAL_ATTEMPTS, backoff: Sequence[float] = LOCAL_BACKOFF,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(name, runtime_of=runtime_of)
        if (handle is None) == (handle_batch is None):
            raise TypeError("give handle or handle_batch" + ("" if handle is None else ", not both"))
        self.handle = handle
        self.handle_batch = handle_batch
        self.events_path = events_path
        self.attempts = max(1, attempts)
        self.backoff = tuple(backoff)
        self.sleep = sleep
        self.ticks = {t.name: HANDLERS[t.name] for t in ticks_of(name)}
        self.topics = tuple(dict.fromkeys(s.topic for s in SUBSCRIPTIONS if s.function == name))

    async def __call__(self, request: Request) -> Response:
        with logs.context(function=self.name):
            self.runtime  # noqa: B018 -- composed now (and tracing with it), before the delivery's span starts
            return await self._serve(request)

    async def _serve(self, request: Request) -> Response:
        path = request.url.path
        if path == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return JSONResponse({"status": "ok", "function": self.name})
        if path == READY_PATH and request.method in ("GET", "HEAD"):
            return await ready(self.runtime, self.name)
        if path == METRICS_PATH and request.method in ("GET", "HEAD"):
            return await metrics_response(self.runtime, self.name)
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
        except Exception as exc:  # Poison, or a parser that gave up (JSON nested too deep): the same body fails alike
            rejection = exc if isinstance(exc, Poison) else Poison(f"unreadable delivery: {type(exc).__name__}")
            via = "knative" if _binary(request.headers) else "dapr"
            rejection.raw = _as_received(body)
            verdict, reason = await in_thread(self._reject, None, rejection, via)
            self._count(None, "poison")
            return done(via, reason) if verdict == SUCCESS else poison(via, reason or str(rejection))
        started = time.perf_counter()
        first = event if isinstance(event, IncomingEvent) else next(
            (e for _, e in event if isinstance(e, IncomingEvent)), None)
        entries = [e for _, e in event] if isinstance(event, list) else [event]
        # daprd and KafkaSource send the delivery's trace context as the traceparent header; each event
        # carries its change's (the outbox row's, todo.adapters.outbox).
        with tracing.delivery(f"{self.name} {first.type if first is not None else 'delivery'}",
                              header=request.headers.get("traceparent"),
                              events=[_traceparent(e) for e in entries], attributes={
                                  "messaging.system": "kafka",
                                  "messaging.destination.name": self._topic_label(first),
                                  "messaging.message.id": first.id if first is not None else None,
                                  "messaging.batch.message_count": len(entries)}):
            try:
                if isinstance(event, list):  # a daprd bulk
                    statuses = await in_thread(self._process_bulk, event)
                    return JSONResponse({"statuses": [{"entryId": entry_id, "status": status}
                                                      for entry_id, status in statuses]})
                verdict, reason = (await in_thread(self._process, [event]))[0]
            finally:
                metrics.EVENT_SECONDS.observe(time.perf_counter() - started, function=self.name,
                                              topic=self._topic_label(first))
        if verdict == SUCCESS:
            return done(event.via, reason)
        if verdict == DROP:
            return poison(event.via, reason or "poison")
        return retry(reason or "transient failure")

    def _process_bulk(self, bulk: list[BulkEntry]) -> list[tuple[str, str]]:
        events = [item for _, item in bulk if isinstance(item, IncomingEvent)]
        verdicts = iter(self._process(events))
        statuses = []
        for entry_id, item in bulk:
            if isinstance(item, Poison):
                statuses.append((entry_id, self._reject(None, item, "dapr")[0]))
                self._count(None, "poison")
                continue
            statuses.append((entry_id, next(verdicts)[0]))
        return statuses

    def _process(self, events: Sequence[IncomingEvent]) -> list[Verdict]:
        seen_before: set[tuple[str, str]] = set()
        token = metrics.duplicates.set(seen_before)  # the claims that find an event applied before say so here
        try:
            with logs.context(**(event_context(events[0]) if len(events) == 1 else {})):
                outcomes = self._apply(events)
        finally:
            metrics.duplicates.reset(token)
        verdicts = self._verdicts(events, outcomes)
        for event, (verdict, reason) in zip(events, verdicts, strict=True):
            outcome = {DROP: "poison", RETRY: "retry"}.get(verdict)
            if outcome is None:
                outcome = "poison" if reason is not None else \
                    "duplicate" if (event.source, event.id) in seen_before else "success"
            self._count(event, outcome)
        return verdicts

    def _count(self, event: IncomingEvent | None, outcome: str) -> None:
        # Labels from what we know only: a poison event's type or topic could be anything.
        known = event is not None and event.type in EVENT_TYPES
        metrics.EVENTS.inc(function=self.name, topic=self._topic_label(event),
                           type=event.type if known and event is not None else "other", outcome=outcome)

    def _topic_label(self, event: IncomingEvent | None) -> str:
        topic = self._topic_of(event, None)
        return topic if topic in self.topics else "other"

    def _verdicts(self, events: Sequence[IncomingEvent], outcomes: list[Exception | None]) -> list[Verdict]:
        verdicts: list[Verdict] = []
        for event, outcome in zip(events, outcomes, strict=True):
            with logs.context(**event_context(event)):
                if outcome is None:
                    verdicts.append((SUCCESS, None))
                elif isinstance(outcome, Poison):
                    verdicts.append(self._reject(event, outcome, event.via))
                elif isinstance(outcome, Waiting):
                    log.info("event waits for an earlier one of its partition key; asking for redelivery")
                    verdicts.append((RETRY, str(outcome)))
                else:
                    log.error("event failed on a transient error; asking for redelivery", exc_info=outcome)
                    verdicts.append((RETRY, type(outcome).__name__))
        return verdicts

    # -- applying events ---------------------------------------------------------------------------

    def _apply(self, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        """Outcomes per event: None (done), a :class:`Poison`, or a transient failure (or
        :class:`Waiting`) to be redelivered."""
        if not events:
            return []
        if self.handle_batch is None:
            return self._each(events)
        try:
            return list(self.handle_batch(self.runtime, events))
        except Exception as exc:
            if is_transient(exc):  # the moment, not these events: all of them again later
                log.warning("batch failed on a transient error; asking for its redelivery",
                            extra={"events": len(events)}, exc_info=exc)
                return [exc] * len(events)
            log.warning("batch failed; applying its events one at a time", extra={"events": len(events)},
                        exc_info=exc)
            return self._each(events, failed_once=len(events) == 1)

    def _each(self, events: Sequence[IncomingEvent], failed_once: bool = False) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        waiting: set[str | None] = set()
        for event in events:
            key = order_key(event)
            if key in waiting:
                outcomes.append(Waiting(f"an earlier event of {key!r} is to be redelivered first"))
                continue
            with logs.context(**event_context(event)):
                outcome = self._attempt(event, spent=1 if failed_once else 0)
            if outcome is not None and not isinstance(outcome, Poison):
                waiting.add(key)
            outcomes.append(outcome)
        return outcomes

    def _attempt(self, event: IncomingEvent, spent: int = 0) -> Exception | None:
        """Apply one event: None, a Poison, or the transient failure to ask a redelivery for. An unexpected
        exception is tried again (``self.attempts`` times in all, short backoff), then is poison."""
        attempt = spent
        while True:
            attempt += 1
            try:
                self._apply_one(event)
                return None
            except Poison as exc:
                exc.attempts = attempt
                return exc
            except Exception as exc:
                if is_transient(exc):
                    return exc
                if attempt >= self.attempts:
                    log.error("event failed on every attempt; it is poison", extra={"attempts": attempt},
                              exc_info=exc)
                    return Poison(f"{type(exc).__name__}: {exc}", attempts=attempt)
                log.warning("event failed; trying it again", extra={"attempt": attempt}, exc_info=exc)
                self.sleep(self.backoff[min(attempt, len(self.backoff)) - 1] if self.backoff else 0.0)

    def _apply_one(self, event: IncomingEvent) -> None:
        if self.handle is not None:
            self.handle(self.runtime, event)
            return
        assert self.handle_batch is not None
        outcome = self.handle_batch(self.runtime, [event])[0]
        if outcome is not None:
            raise outcome

    # -- dead letters --------------------------------------------------------------------------------

    def _reject(self, event: IncomingEvent | None, rejection: Poison, via: str) -> Verdict:
        """Dead-letter a poison event with its reason. daprd: SUCCESS once the record is on the dead-letter
        topic (DROP when it could not be: daprd then forwards the bare event); Knative: DROP (400), whose
        body its dead-letter sink keeps with the event."""
        reason = reason_of(f"{self.name}: {rejection}")
        raw: Any = {**event.attributes, "data": event.data} if event is not None else rejection.raw
        log.warning("poison event", extra={"reason": reason, "attempts": rejection.attempts})
        letter = DeadLetter(self.name, self._topic_of(event, raw), raw if raw is not None else "", reason,
                            rejection.attempts, datetime.now(UTC))
        try:
            kept = self.runtime.dead_letters.send(letter, publish=via == "dapr")
        except Exception:
            log.exception("could not send a dead letter", extra={"reason": reason})
            kept = False
        return (SUCCESS, reason) if kept and via == "dapr" else (DROP, reason)

    def _topic_of(self, event: IncomingEvent | None, raw: Any) -> str | None:
        """The topic the event came from: daprd names it in the event; else our type's topic; else the
        function's only subscribed topic."""
        attributes = event.attributes if event is not None else raw if isinstance(raw, dict) else {}
        topic = attributes.get("topic")
        if isinstance(topic, str) and topic:
            return topic
        known = EVENT_TYPES.get(str(attributes.get("type")))
        if known is not None and known.topic in self.topics:
            return known.topic
        return self.topics[0] if len(self.topics) == 1 else None
