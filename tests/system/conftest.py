"""The real stack, started once for the session: PostgreSQL, Kafka 4, and per function its process as
the image runs it (todo_dev.launch.AsShipped) with its own daprd. Nothing here is faked.

test_tls.py asks for the stack with every connection TLS (``stack`` parametrised "tls"): pytest then
stops the plain stack and starts that one on the same ports, after the plain stack's tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from todo.edge.auth import mint
from todo.settings import Settings
from todo_dev import ports
from todo_dev.launch import AsShipped
from todo_dev.stack import Stack

SECRET = "system-secret-" + "s" * 40


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tls = getattr(request, "param", "plain") == "tls"
    # Every process as the images ship it: built from the Dockerfile, started with its command line.
    folder = tmp_path_factory.mktemp("stack-tls" if tls else "stack")
    stack = Stack.on(ports.system(), folder, SECRET, launcher=AsShipped(folder / "images"),
                     webhooks_to_loopback=True, tls=tls)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        print(f"stack log: {stack.log_path}")


@pytest.fixture(scope="session")
def api(stack: Stack) -> Callable[..., httpx.Response]:
    client = httpx.Client(base_url=f"http://127.0.0.1:{stack.gateway_port}", timeout=30)

    def call(method: str, path: str, user: str = "alice", **kwargs: Any) -> httpx.Response:
        token = mint(Settings(jwt_secret=SECRET), user)
        return client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return call


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def read_topic(stack: Stack, topic: str, until: Callable[[list[Any]], bool], timeout: float = 60.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, until ``until(records)`` holds (or time runs out)."""
    consumer = Consumer({**stack.kafka_client(), "group.id": f"probe-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(records):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                records.append(message)
    finally:
        consumer.close()
    return records


def cloud_events(records: list[Any]) -> list[dict[str, Any]]:
    out = []
    for record in records:
        try:
            out.append(json.loads(record.value()))
        except ValueError:
            continue
    return out


def produce(stack: Stack, topic: str, value: bytes, key: str, headers: dict[str, str] | None = None) -> None:
    producer = Producer(stack.kafka_client())
    producer.produce(topic, value=value, key=key, headers=list((headers or {}).items()))
    assert producer.flush(10) == 0


def eventually(check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        else:
            if result is not False:
                return result
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
        time.sleep(interval)
