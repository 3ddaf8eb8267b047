"""Engines and sidecars go away mid-stream; nothing committed is lost."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from todo_dev.stack import Stack

from .conftest import cloud_events, read_topic

pytestmark = pytest.mark.system


def created_ids(stack: Stack, user: str, expected: int) -> list[str]:
    def mine(records: list[object]) -> list[str]:
        return [e["id"] for e in cloud_events(records) if e.get("data", {}).get("user_id") == user]

    return mine(read_topic(stack, "task-events", lambda rs: len(set(mine(rs))) >= expected, timeout=120))


def test_tasks_created_while_kafka_is_down_are_published_when_it_returns(
        stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    stack.stop_kafka()
    try:
        titles = [f"offline {i}" for i in range(5)]
        for title in titles:  # the write path does not need Kafka: the outbox holds the events
            assert api("POST", "/tasks", user, json={"title": title}).status_code == 201
    finally:
        stack.start_kafka()
    ids = created_ids(stack, user, 5)
    assert len(set(ids)) == 5


def test_a_killed_sidecar_loses_nothing(stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    assert api("POST", "/tasks", user, json={"title": "before"}).status_code == 201
    stack.kill("create-task.daprd")
    try:
        for i in range(3):  # publishing fails while the sidecar is gone; the rows stay pending
            assert api("POST", "/tasks", user, json={"title": f"during {i}"}).status_code == 201
    finally:
        stack.start_function("create-task", app=False)
    assert api("POST", "/tasks", user, json={"title": "after"}).status_code == 201
    assert len(set(created_ids(stack, user, 5))) == 5


def test_a_killed_function_process_loses_nothing(stack: Stack, api: Callable[..., httpx.Response], user: str) -> None:
    for i in range(3):
        assert api("POST", "/tasks", user, json={"title": f"t{i}"}).status_code == 201
    stack.kill("create-task")
    stack.start_function("create-task", sidecar=False)
    assert api("POST", "/tasks", user, json={"title": "after restart"}).status_code == 201
    assert len(set(created_ids(stack, user, 4))) == 4
