"""Live sync: every change reaches all of its user's sockets, in order, once; nobody else's."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from todo.adapters.outbox import Message, Publisher, Undelivered
from todo.domain.task import TaskFields
from todo.edge import push
from todo.runtime import Runtime
from todo.service import tasks as service
from todo.service.tasks import Context

from .conftest import Api


def bearer(token: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"subprotocols": ["bearer", token], **({"headers": headers} if headers else {})}


def make(api: Api, title: str) -> int:
    response = api.post("/tasks", json={"title": title})
    assert response.status_code == 201
    return int(response.json()["id"])


def test_a_change_reaches_every_socket_of_its_user_in_order(client: TestClient, alice: Api, token: Any) -> None:
    with client.websocket_connect("/ws", **bearer(token("alice"))) as one, \
            client.websocket_connect("/ws", **bearer(token("alice"))) as two:
        task = make(alice, "first")
        alice.patch(f"/tasks/{task}", json={"title": "second"})
        for socket in (one, two):
            got = [socket.receive_json(), socket.receive_json()]
            assert [(m["seq"], m["type"]) for m in got] == [(1, "task.created"), (2, "task.updated")]
            assert got[1]["task"]["title"] == "second"


class LastFirst:
    """A broker that hands each request's entries on last first: the relay sends task-updates without
    waves (todo.service.events.SELF_ORDERED_TOPICS), so its events may arrive in any order. It refuses
    every request until opened, so that all the test's changes go out in one drain, whoever drains."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.open = False
        self.requests: list[tuple[str, int]] = []  # (topic, entries) of each request taken

    def publish_many(self, topic: str, messages: Sequence[Message]) -> Sequence[Undelivered]:
        if not self.open:
            raise ConnectionError("the broker is not up yet")
        self.requests.append((topic, len(messages)))
        order = list(reversed(range(len(messages))))
        missed = self.inner.publish_many(topic, [messages[i] for i in order])
        return [dataclasses.replace(m, index=order[m.index]) for m in missed]


def test_changes_whose_events_arrive_last_first_reach_the_socket_once_each_in_seq_order(
        client: TestClient, runtime: Runtime, token: Any) -> None:
    # The gateway's relay and its outbox-sweep tick drain too: they go through the same broker.
    broker = runtime.relay.publisher = LastFirst(runtime.publisher)
    with client.websocket_connect("/ws", **bearer(token("alice"))) as socket:
        for i in range(3):
            service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)),
                                TaskFields(title=f"t{i}"))
        broker.open = True
        runtime.relay.drain()
        got = [socket.receive_json() for _ in range(3)]
    assert ("task-updates", 3) in broker.requests  # the three in one request, handed on last first
    assert [(m["seq"], m["task"]["title"]) for m in got] == [(1, "t0"), (2, "t1"), (3, "t2")]


def test_a_change_its_event_brings_is_sent_without_another_read_of_the_feed(
        client: TestClient, alice: Api, runtime: Runtime, token: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []  # each read of the feed: after which seq
    since = runtime.push_store.since

    def counted(user_id: str, after: int, limit: int = 500) -> list[dict[str, Any]]:
        reads.append(after)
        return since(user_id, after, limit)

    monkeypatch.setattr(runtime.push_store, "since", counted)
    monkeypatch.setattr(push, "POLL_SECONDS", 3600.0)  # the poll's fill: tests/system/test_push.py, two replicas
    with client.websocket_connect("/ws", **bearer(token("alice"))) as socket:
        for title in ("one", "two", "three"):
            make(alice, title)
            assert socket.receive_json()["task"]["title"] == title
    assert reads == [0]  # the replay at the start; each push after it came with its event


def test_no_other_user_ever_receives_it(client: TestClient, alice: Api, bob: Api, token: Any) -> None:
    with client.websocket_connect("/ws", **bearer(token("bob"))) as bobs:
        make(alice, "alice's secret")
        make(bob, "bob's own")
        message = bobs.receive_json()
        assert message["task"]["title"] == "bob's own" and message["seq"] == 1


def test_reconnecting_with_since_replays_what_was_missed_then_goes_live(
        client: TestClient, alice: Api, token: Any) -> None:
    for i in range(3):
        make(alice, f"t{i}")
    with client.websocket_connect("/ws?since=1", **bearer(token("alice"))) as socket:
        assert [socket.receive_json()["seq"] for _ in range(2)] == [2, 3]
        make(alice, "live")
        live = socket.receive_json()
        assert (live["seq"], live["task"]["title"]) == (4, "live")


def test_changes_over_http_serve_the_same_feed(alice: Api) -> None:
    for i in range(3):
        make(alice, f"t{i}")
    page = alice.get("/changes", params={"since": 1}).json()
    assert [m["seq"] for m in page["items"]] == [2, 3] and page["last_seq"] == 3
    assert alice.get("/changes", params={"since": -1}).status_code == 422


@pytest.mark.parametrize("how", ["no token", "forged", "bad origin", "bad since"])
def test_sockets_are_refused_before_the_upgrade(client: TestClient, token: Any, how: str) -> None:
    kwargs: dict[str, Any] = {
        "no token": {},
        "forged": bearer(token("alice")[:-4] + "AAAA"),
        "bad origin": {**bearer(token("alice")), "headers": {"origin": "https://evil.example"}},
        "bad since": bearer(token("alice")),
    }[how]
    path = "/ws?since=-3" if how == "bad since" else "/ws"
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(path, **kwargs):
        pass
    assert refused.value.code == 1008


def test_a_ticket_opens_one_socket_once(client: TestClient, alice: Api) -> None:
    issued = alice.post("/ws/ticket")
    assert issued.status_code == 201
    ticket = issued.json()["ticket"]
    with client.websocket_connect(f"/ws?ticket={ticket}") as socket:
        make(alice, "via ticket")
        assert socket.receive_json()["task"]["title"] == "via ticket"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/ws?ticket={ticket}"):
        pass
    assert client.post("/ws/ticket").status_code == 401


def test_the_socket_closes_when_the_token_expires(client: TestClient, token: Any) -> None:
    with client.websocket_connect("/ws", **bearer(token("alice", ttl=1))) as socket:
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1008


def test_a_page_may_open_a_socket_on_the_host_that_served_it_and_no_other_site_may(
        client: TestClient, token: Any) -> None:
    # Served by a gateway on a public domain that TODO_WS_ORIGINS does not list: same origin is enough.
    same = {"origin": "https://todo.example.com", "x-forwarded-host": "todo.example.com"}
    with client.websocket_connect("/ws", **bearer(token("alice"), headers=same)):
        pass
    other = {"origin": "https://evil.example", "x-forwarded-host": "todo.example.com"}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            "/ws", **bearer(token("alice"), headers=other)):
        pass
    assert refused.value.code == 1008
