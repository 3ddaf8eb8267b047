"""The chaos load's client behaves as a browser's does when a kept-alive connection dies unanswered: an
idempotent request is sent once more (and counted), anything else is reported as it failed."""

from __future__ import annotations

import asyncio

import httpx

from todo_dev.chaos.checker import Collected, check
from todo_dev.chaos.load import Load, Plan

SECRET = "unit-secret-" + "s" * 40


def dropping_first(requests: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(204)  # only a resent request gets this far
    return httpx.MockTransport(handle)


def call(method: str, path: str, action: str) -> tuple[Load, list[httpx.Request], httpx.Response | None]:
    load = Load("http://gateway", SECRET, Plan(users=1), "unit")
    requests: list[httpx.Request] = []

    async def go() -> httpx.Response | None:
        async with httpx.AsyncClient(base_url="http://gateway", transport=dropping_first(requests)) as client:
            return await load.call(client, load.users[0], action, method, path, task_id=7)
    return load, requests, asyncio.run(go())


def test_a_delete_reset_before_any_answer_is_sent_once_more_and_counted_as_resent() -> None:
    load, requests, answer = call("DELETE", "/tasks/7", "delete")
    assert answer is not None and answer.status_code == 204 and len(requests) == 2
    assert load.calls[0]["resent"] == "RemoteProtocolError" and load.calls[0]["status"] == 204


def test_a_create_reset_before_any_answer_is_not_sent_again_and_stays_unanswered() -> None:
    load, requests, answer = call("POST", "/tasks", "create")
    assert answer is None and len(requests) == 1
    assert load.calls[0]["status"] == 0 and load.calls[0]["error"] == "RemoteProtocolError"
    assert "resent" not in load.calls[0]


def test_the_checker_counts_a_resent_request_apart_from_the_server_errors() -> None:
    load, _, _ = call("DELETE", "/tasks/7", "delete")
    report = check(Collected(calls=load.calls))
    assert report.http["update-task"]["resent"] == 1 and report.server_errors == 0
