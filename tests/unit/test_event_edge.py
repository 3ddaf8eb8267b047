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


class Flaky(Exception):
    pass


def call(fn: EventFunction, body: Any) -> httpx.Response:
    fn.bind(cast(Runtime, None))  # the handlers of these tests take no runtime
    async def endpoint(request: Request) -> Response:
        return await fn(request)

    app = Starlette(routes=[Route("/events", endpoint, methods=["POST"])])
    return TestClient(app).post("/events", content=json.dumps(body), headers={"content-type": "application/json"})


def test_each_bulk_entry_gets_the_status_it_would_have_alone() -> None:
    batches: list[list[str]] = []

    def handle_batch(runtime: Any, events: Sequence[IncomingEvent]) -> list[Exception | None]:
        batches.append([e.id for e in events])
        if any(e.data["n"] == 3 for e in events):
            raise Flaky("database hiccup")  # the whole batch fails: each event is then tried alone
        return [Poison("bad shape") if e.data["n"] == 2 else None for e in events]

    body = {"id": "b", "type": "com.dapr.event.sent.bulk", "entries": [
        {"entryId": "a", "event": ce(1)}, {"entryId": "b", "event": {"not": "a cloudevent"}},
        {"entryId": "c", "event": ce(2)}, {"entryId": "d", "event": ce(3)}, {"entryId": "e", "event": ce(4)}]}
    response = call(EventFunction("f", handle_batch=handle_batch), body)
    assert response.status_code == 200
    assert response.json() == {"statuses": [
        {"entryId": "a", "status": "SUCCESS"}, {"entryId": "b", "status": "DROP"},
        {"entryId": "c", "status": "DROP"}, {"entryId": "d", "status": "RETRY"},
        {"entryId": "e", "status": "SUCCESS"}]}
    assert batches == [["e1", "e2", "e3", "e4"], ["e1"], ["e2"], ["e3"], ["e4"]]


def test_a_one_event_handler_takes_bulks_event_by_event() -> None:
    seen: list[str] = []

    def handle(runtime: Any, event: IncomingEvent) -> None:
        seen.append(event.id)
        if event.data["n"] == 2:
            raise Flaky("no")

    body = {"entries": [{"entryId": str(n), "event": ce(n)} for n in (1, 2, 3)]}
    response = call(EventFunction("f", handle), body)
    assert [s["status"] for s in response.json()["statuses"]] == ["SUCCESS", "RETRY", "SUCCESS"]
    assert seen == ["e1", "e2", "e3"]
    single = call(EventFunction("f", handle), ce(2))
    assert single.status_code == 500 and single.json()["status"] == "RETRY"


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
