"""todo proxy against an upstream that drops connections: a safe retry, an honest 502, a logged cause."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from todo.proxy import KEEPALIVE_EXPIRY, build_proxy_app
from todo_dev import ports


class Dropping:
    """An HTTP/1.1 server that reads each request and, while ``drops`` lasts, closes without answering
    (what a function does to a kept-alive connection it has timed out, or when it dies mid-request)."""

    def __init__(self, port: int) -> None:
        self.drops = 0
        self.requests: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                self.requests.append(data.split(b"\r\n", 1)[0])
                if self.drops > 0:
                    self.drops -= 1
                    continue  # closed, no answer
                body = b'{"status":"ok"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the serving thread
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def upstream() -> Iterator[Dropping]:
    server = Dropping(ports.test_port(51))
    yield server
    server.close()


@pytest.fixture
def gateway(upstream: Dropping) -> Iterator[TestClient]:
    url = f"http://127.0.0.1:{ports.test_port(51)}"
    with TestClient(build_proxy_app({"query-tasks": url, "create-task": url})) as client:
        yield client


def test_an_idempotent_request_is_sent_again_when_the_connection_dies_unanswered(
        gateway: TestClient, upstream: Dropping, caplog: pytest.LogCaptureFixture) -> None:
    upstream.drops = 1
    with caplog.at_level(logging.WARNING, logger="todo.proxy"):
        answer = gateway.get("/tasks")
    assert answer.status_code == 200 and len(upstream.requests) == 2
    failed = [r for r in caplog.records if r.getMessage().startswith("upstream failed")]
    assert failed and failed[0].upstream == "query-tasks" and "RemoteProtocolError" in failed[0].cause


def test_a_create_is_not_sent_twice_when_the_function_may_have_read_it(
        gateway: TestClient, upstream: Dropping, caplog: pytest.LogCaptureFixture) -> None:
    upstream.drops = 1
    with caplog.at_level(logging.WARNING, logger="todo.proxy"):
        answer = gateway.post("/tasks", json={"title": "once"})
    assert answer.status_code == 502 and answer.headers["content-type"] == "application/problem+json"
    assert len(upstream.requests) == 1  # it may have been applied: sending it again could make two
    assert any("upstream failed" in r.getMessage() and r.method == "POST" for r in caplog.records)


def test_a_function_that_is_not_listening_is_503_and_retried_once(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{ports.test_port(69)}"  # nothing listens: nothing was sent, so a retry is safe
    with TestClient(build_proxy_app({"create-task": url})) as client, caplog.at_level(logging.WARNING):
        answer = client.post("/tasks", json={"title": "x"})
    assert answer.status_code == 503 and answer.json()["status"] == 503
    assert [r.attempt for r in caplog.records if r.getMessage().startswith("upstream failed")] == [1, 2]


def test_kept_alive_connections_expire_before_the_functions_close_them() -> None:
    # functions-framework's worker keeps an idle connection 2 s (gunicorn's keepalive), uvicorn 5 s.
    assert KEEPALIVE_EXPIRY < 2
    assert httpx.Limits().keepalive_expiry == 5.0  # the default we replace: the cause of the 502s seen
