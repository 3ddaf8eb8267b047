"""Both delivery forms, from the golden files in tests/events/, read into the same event."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from todo.edge.events import EventFunction, IncomingEvent, Poison, parse, read
from todo.runtime import Runtime
from todo.service.dead_letters import DeadLetter

EVENTS = Path(__file__).resolve().parents[1] / "events"


def delivery(name: str) -> tuple[dict[str, str], bytes]:
    raw = json.loads((EVENTS / name).read_text())
    body: Any = raw["envelope"] if "envelope" in raw else raw["body"]
    return raw["headers"], json.dumps(body).encode()


@pytest.mark.parametrize(("name", "via"), [
    ("dapr-envelope-task-created.json", "dapr"),
    ("knative-binary-cloudevent-passthrough.json", "knative"),
    ("knative-binary-plain-record.json", "knative"),
])
def test_every_delivery_form_reads_as_our_event(name: str, via: str) -> None:
    headers, body = delivery(name)
    event = parse(headers, body)
    assert (event.source, event.type, event.via) == ("/todo/functions/create-task", "dev.todo.task.created.v1", via)
    assert event.data["event_type"] == "created" and event.data["task_data"]["title"] == "golden"
    assert event.id == "<id>"


@pytest.mark.parametrize(("headers", "body", "reason"), [
    ({"content-type": "application/cloudevents+json"}, b"{not json", "malformed JSON"),
    ({"content-type": "application/cloudevents+json"}, b'{"id": "1"}', "not a CloudEvent"),
    ({"content-type": "text/plain"}, b"hello", "not a CloudEvent"),
    ({"ce-id": "1", "ce-source": "s", "ce-type": "t"}, b"{}", "specversion"),
    ({"ce-id": "1", "ce-source": "s", "ce-type": "t", "ce-specversion": "0.3"}, b"{}", "specversion"),
])
def test_anything_else_is_poison(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(Poison, match=reason):
        parse(headers, body)


# -- bulk deliveries ------------------------------------------------------------------------------

def test_a_bulk_delivery_reads_as_the_same_events() -> None:
    headers, body = delivery("dapr-bulk-task-created.json")
    entries = read(headers, body)
    assert isinstance(entries, list) and len(entries) == 1
    entry_id, event = entries[0]
    single = parse(*delivery("dapr-envelope-task-created.json"))
    assert entry_id == "<entryId>" and event == single


def test_a_single_cloudevent_is_not_a_bulk() -> None:
    single = delivery("dapr-envelope-task-created.json")
    assert read(*single) == parse(*single)
    with pytest.raises(Poison, match="malformed JSON"):
        read({"content-type": "application/json"}, b"{not json")


def ce(n: int, **more: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "source": "/test", "type": "t", "data": {"n": n}, **more}


class Bug(Exception):
    """An exception nobody expected: the same event would meet it again."""


class FakeOffice:
    """The runtime's dead-letter sink: keeps what it is sent (or, ``keeps=False``, cannot keep it)."""

    def __init__(self, keeps: bool = True) -> None:
        self.keeps = keeps
        self.letters: list[tuple[DeadLetter, bool]] = []

    def send(self, letter: DeadLetter, *, publish: bool) -> bool:
        self.letters.append((letter, publish))
        return self.keeps


class FakeRuntime:
    def __init__(self, keeps: bool = True) -> None:
        self.dead_letters = FakeOffice(keeps)


def function(handle: Any = None, *, handle_batch: Any = None, keeps: bool = True,
             sleeps: list[float] | None = None) -> tuple[EventFunction, FakeOffice]:
    fn = EventFunction("f", handle, handle_batch=handle_batch,
                       sleep=(sleeps.append if sleeps is not None else lambda _: None))
    runtime = FakeRuntime(keeps)
    fn.bind(cast(Runtime, runtime))
    return fn, runtime.dead_letters


def call(fn: EventFunction, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async def endpoint(request: Request) -> Response:
        return await fn(request)

    app = Starlette(routes=[Route("/events", endpoint, methods=["POST"])])
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return TestClient(app).post("/events", content=content,
                                headers=headers or {"content-type": "application/json"})


def test_each_bulk_entry_gets_the_status_it_would_have_alone() -> None:
    batches: list[list[str]] = []

    def handle_batch(runtime: Any, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        batches.append([e.id for e in events])
        if any(e.data["n"] == 3 for e in events):
            raise Bug("3 is unlucky")  # the whole batch fails: each event is then tried alone
        return [Poison("bad shape") if e.data["n"] == 2 else None for e in events]

    body = {"id": "b", "type": "com.dapr.event.sent.bulk", "entries": [
        {"entryId": "a", "event": ce(1)}, {"entryId": "b", "event": {"not": "a cloudevent"}},
        {"entryId": "c", "event": ce(2)}, {"entryId": "d", "event": ce(3)}, {"entryId": "e", "event": ce(4)}]}
    for keeps, dead in ((True, "SUCCESS"), (False, "DROP")):
        batches.clear()
        fn, office = function(handle_batch=handle_batch, keeps=keeps)
        response = call(fn, body)
        assert response.status_code == 200
        assert response.json() == {"statuses": [
            {"entryId": "a", "status": "SUCCESS"}, {"entryId": "b", "status": dead},
            {"entryId": "c", "status": dead}, {"entryId": "d", "status": dead},
            {"entryId": "e", "status": "SUCCESS"}]}
        assert batches == [["e1", "e2", "e3", "e4"], ["e1"], ["e2"], ["e3"], ["e3"], ["e3"], ["e4"]]
        assert [(letter.event_id, letter.attempts, letter.reason) for letter, _ in office.letters] == [
            ("e2", 1, "f: bad shape"), ("e3", 3, "f: Bug: 3 is unlucky"),
            (None, 1, "f: the body is not a CloudEvent")]
        assert office.letters[2][0].event == {"not": "a cloudevent"}  # kept as it came


def test_a_batch_that_fails_on_a_transient_error_is_redelivered_whole_without_splitting() -> None:
    batches: list[list[str]] = []

    def handle_batch(runtime: Any, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        batches.append([e.id for e in events])
        raise ConnectionError("the database is restarting")

    fn, office = function(handle_batch=handle_batch)
    response = call(fn, {"entries": [{"entryId": str(n), "event": ce(n)} for n in (1, 2, 3)]})
    assert [s["status"] for s in response.json()["statuses"]] == ["RETRY"] * 3
    assert batches == [["e1", "e2", "e3"]]
    assert office.letters == []


def test_a_transient_failure_holds_back_the_later_events_of_its_key_only() -> None:
    seen: list[str] = []

    def handle(runtime: Any, event: IncomingEvent) -> None:
        seen.append(event.id)
        if event.data["n"] == 2:
            raise ConnectionError("no database")

    body = {"entries": [{"entryId": str(n), "event": ce(n, partitionkey=user)}
                        for n, user in ((1, "bob"), (2, "alice"), (3, "alice"), (4, "bob"))]}
    fn, office = function(handle)
    response = call(fn, body)
    assert [s["status"] for s in response.json()["statuses"]] == ["SUCCESS", "RETRY", "RETRY", "SUCCESS"]
    assert seen == ["e1", "e2", "e4"]  # alice's e3 waits for e2 rather than overtake it; bob's e4 goes on
    single = call(function(handle)[0], ce(2))
    assert single.status_code == 500 and single.json()["status"] == "RETRY"
    assert office.letters == []


def test_an_unexpected_exception_is_tried_again_briefly_and_may_then_succeed() -> None:
    calls: list[str] = []

    def handle(runtime: Any, event: IncomingEvent) -> None:
        calls.append(event.id)
        if len(calls) < 3:
            raise Bug("not yet")

    sleeps: list[float] = []
    fn, office = function(handle, sleeps=sleeps)
    response = call(fn, ce(1))
    assert (response.status_code, response.json()) == (200, {"status": "SUCCESS"})
    assert calls == ["e1", "e1", "e1"] and sleeps == [0.05, 0.2]
    assert office.letters == []


def test_an_exception_that_comes_back_on_every_attempt_is_dead_lettered_and_the_stream_moves_on() -> None:
    def handle(runtime: Any, event: IncomingEvent) -> None:
        raise OverflowError("date value out of range")

    fn, office = function(handle)
    response = call(fn, ce(1, topic="task-events"))
    assert (response.status_code, response.json()["status"]) == (200, "SUCCESS")  # kept: daprd moves on
    (letter, published), = office.letters
    assert (letter.consumer, letter.topic, letter.attempts) == ("f", "task-events", 3)
    assert letter.reason == "f: OverflowError: date value out of range"
    assert letter.event["id"] == "e1" and letter.event["data"] == {"n": 1} and published is True
    unkept = call(function(handle, keeps=False)[0], ce(1))
    assert (unkept.status_code, unkept.json()["status"]) == (200, "DROP")  # daprd's dead-lettering then
    assert "OverflowError" in unkept.json()["reason"]


def test_knative_hears_poison_as_400_with_the_reason_and_the_letter_is_kept_unpublished() -> None:
    def handle(runtime: Any, event: IncomingEvent) -> None:
        raise Poison("no such series")

    fn, office = function(handle)
    headers = {"ce-id": "k1", "ce-source": "/s", "ce-type": "dev.todo.task.completed.v1", "ce-specversion": "1.0",
               "content-type": "application/json"}
    response = call(fn, b'{"n": 1}', headers=headers)
    assert response.status_code == 400 and response.json() == {"status": "DROP", "reason": "f: no such series"}
    (letter, published), = office.letters
    assert published is False and letter.attempts == 1 and letter.event["id"] == "k1"


def test_a_poison_answer_from_the_handler_is_not_tried_again() -> None:
    calls: list[str] = []

    def handle(runtime: Any, event: IncomingEvent) -> None:
        calls.append(event.id)
        raise Poison("wrong shape")

    fn, office = function(handle)
    assert call(fn, ce(1)).json()["status"] == "SUCCESS"
    assert calls == ["e1"] and office.letters[0][0].reason == "f: wrong shape"


# -- both modes of the CloudEvents SDK, as functions-framework's own tests do -------------------------

def _sdk_event(**attributes: Any) -> CloudEvent:
    return CloudEvent({"id": "sdk-1", "source": "/todo/functions/create-task", "type": "dev.todo.task.created.v1",
                       "subject": "7", "partitionkey": "alice", **attributes},
                      {"event_type": "created", "task_id": 7})


@pytest.mark.parametrize("mode", [to_binary, to_structured], ids=["binary", "structured"])
def test_the_sdks_binary_and_structured_forms_read_as_the_same_event(mode: Any) -> None:
    headers, body = mode(_sdk_event(time="2026-01-01T09:00:00Z", datacontenttype="application/json"))
    event = parse(headers, body)
    assert (event.id, event.source, event.type, event.subject) == (
        "sdk-1", "/todo/functions/create-task", "dev.todo.task.created.v1", "7")
    assert event.data == {"event_type": "created", "task_id": 7}
    assert event.time == "2026-01-01T09:00:00Z" and event.attributes["partitionkey"] == "alice"


@pytest.mark.parametrize("mode", [to_binary, to_structured], ids=["binary", "structured"])
def test_an_event_keeps_no_time_it_did_not_carry(mode: Any) -> None:
    headers, body = mode(_sdk_event())
    headers = {k: v for k, v in headers.items() if k.lower() != "ce-time"}
    if mode is to_structured:
        body = json.dumps({k: v for k, v in json.loads(body).items() if k != "time"}).encode()
    assert parse(headers, body).time is None  # the SDK would have said "now"


@pytest.mark.parametrize("missing", ["id", "source", "type"])
@pytest.mark.parametrize("mode", [to_binary, to_structured], ids=["binary", "structured"])
def test_an_event_without_a_required_attribute_is_poison_in_both_modes(mode: Any, missing: str) -> None:
    headers, body = mode(_sdk_event())
    headers = {k: v for k, v in headers.items() if k.lower() != f"ce-{missing}"}
    if mode is to_structured:
        body = json.dumps({k: v for k, v in json.loads(body).items() if k != missing}).encode()
    with pytest.raises(Poison, match=missing if mode is to_binary else "not a CloudEvent"):
        parse(headers, body)  # never an id the SDK made up: a redelivery would look new


def test_a_delivery_no_parser_can_read_is_poison_not_a_crash() -> None:
    fn, office = function(lambda runtime, event: None)
    deep = b"[" * 100_000 + b"]" * 100_000  # json.loads gives up with RecursionError
    response = call(fn, deep, headers={"content-type": "application/cloudevents+json"})
    assert (response.status_code, response.json()["status"]) == (200, "SUCCESS")
    (letter, _), = office.letters
    assert letter.reason.startswith("f: ") and letter.attempts == 1
