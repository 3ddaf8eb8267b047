"""Two push-update processes on the real stack: a client on each gets every update once, in order."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from todo.edge.auth import mint
from todo.settings import Settings
from todo_dev import ports
from todo_dev.stack import Ports, Stack

from .conftest import SECRET

pytestmark = pytest.mark.system
SECOND = Ports(*(ports.test_port(n) for n in range(5, 10)))


@pytest.fixture(scope="module")
def two_replicas(stack: Stack) -> Iterator[tuple[int, int]]:
    stack.start_function("push-update", ports=SECOND, name="push-update-2")
    try:
        yield stack.ports("push-update").app, SECOND.app
    finally:
        stack.stop("push-update-2.daprd")
        stack.stop("push-update-2")


def open_socket(port: int, user: str, since: int | None = None) -> ClientConnection:
    token = mint(Settings(jwt_secret=SECRET), user)
    query = "" if since is None else f"?since={since}"
    return connect(f"ws://127.0.0.1:{port}/ws{query}", subprotocols=["bearer", token],  # type: ignore[list-item]
                   open_timeout=10)


def test_a_client_on_each_replica_gets_every_update_once_in_order(
        stack: Stack, api: Callable[..., httpx.Response], user: str, two_replicas: tuple[int, int]) -> None:
    first, second = two_replicas
    with open_socket(first, user, since=0) as one, open_socket(second, user, since=0) as two:
        ids = [api("POST", "/tasks", user, json={"title": f"t{i}"}).json()["id"] for i in range(6)]
        for socket in (one, two):
            got = [json.loads(socket.recv(timeout=30)) for _ in range(6)]
            assert [m["seq"] for m in got] == [1, 2, 3, 4, 5, 6]
            assert [m["task"]["id"] for m in got] == ids
        with pytest.raises(TimeoutError):  # and nothing twice
            one.recv(timeout=2)


def test_a_reconnecting_client_gets_what_it_missed(stack: Stack, api: Callable[..., httpx.Response], user: str,
                                                   two_replicas: tuple[int, int]) -> None:
    first, second = two_replicas
    with open_socket(first, user, since=0) as socket:
        api("POST", "/tasks", user, json={"title": "seen"})
        assert json.loads(socket.recv(timeout=30))["seq"] == 1
    api("POST", "/tasks", user, json={"title": "missed"})
    with open_socket(second, user, since=1) as socket:
        message = json.loads(socket.recv(timeout=30))
        assert (message["seq"], message["task"]["title"]) == (2, "missed")


# -- through the gateway: one base URL for HTTP and the WebSocket ------------------------------------------


def test_the_gateway_passes_the_socket_through_with_its_subprotocol(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    with open_socket(stack.gateway_port, user, since=0) as socket:
        assert socket.subprotocol == "bearer"  # what push-update answered, passed back
        task = api("POST", "/tasks", user, json={"title": "through the gateway"}).json()
        message = json.loads(socket.recv(timeout=30))
    assert (message["seq"], message["type"], message["task"]["id"]) == (1, "task.created", task["id"])


def test_a_ticket_opens_a_socket_through_the_gateway(stack: Stack, api: Callable[..., httpx.Response],
                                                     user: str) -> None:
    ticket = api("POST", "/ws/ticket", user).json()["ticket"]
    api("POST", "/tasks", user, json={"title": "before the socket"})
    with connect(f"ws://127.0.0.1:{stack.gateway_port}/ws?ticket={ticket}&since=0", open_timeout=10) as socket:
        assert json.loads(socket.recv(timeout=30))["task"]["title"] == "before the socket"
    with pytest.raises(InvalidStatus) as refused:  # one use only: push-update refuses, so does the gateway
        connect(f"ws://127.0.0.1:{stack.gateway_port}/ws?ticket={ticket}", open_timeout=10)
    assert refused.value.response.status_code == 403


def test_push_updates_close_reaches_the_client_through_the_gateway(stack: Stack, user: str) -> None:
    token = mint(Settings(jwt_secret=SECRET), user, ttl_seconds=2)
    with connect(f"ws://127.0.0.1:{stack.gateway_port}/ws", subprotocols=["bearer", token],  # type: ignore[list-item]
                 open_timeout=10) as socket, pytest.raises(ConnectionClosed):
        socket.recv(timeout=60)
    assert (socket.close_code, socket.close_reason) == (1008, "token expired")
