"""Both delivery forms, from the golden files in tests/events/, read into the same event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from todo.edge.events import Poison, parse

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
