"""A reminder on the real stack: daprd's cron ticks the scan, Kafka carries the trigger, and daprd's
SMTP binding mails a real SMTP server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.smtp_inbox import Inbox
from todo_dev.stack import Stack

from .conftest import cloud_events, eventually, read_topic

pytestmark = pytest.mark.system


@pytest.fixture
def inbox(stack: Stack) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=stack.smtp_port)
    controller.start()
    yield inbox
    controller.stop()


def test_a_reminder_fires_once_by_email_and_in_app(stack: Stack, api: Callable[..., httpx.Response], user: str,
                                                   inbox: Inbox) -> None:
    address = f"{user}@example.com"
    assert api("PUT", "/me/notifications", user, json={"email": address}).status_code == 200
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    task = api("POST", "/tasks", user, json={"title": "system reminder", "reminders": [{"at": at}]}).json()

    def mailed() -> list[Any]:
        mine = [m for m in inbox.messages if address in m.rcpt_tos]
        assert mine
        return mine

    mine = eventually(mailed, timeout=90)
    assert b"system reminder" in mine[0].content
    def reminder_pushed(records: list[Any]) -> bool:
        return any(e.get("data", {}).get("user_id") == user and e["data"]["message"]["type"] == "reminder"
                   for e in cloud_events(records))

    pushed = read_topic(stack, "task-updates", reminder_pushed)
    messages = [e["data"]["message"] for e in cloud_events(pushed) if e.get("data", {}).get("user_id") == user]
    reminders = [m for m in messages if m["type"] == "reminder"]  # task changes come this way too
    assert [m["reminder"]["task_id"] for m in reminders] == [task["id"]]
    assert len([m for m in inbox.messages if address in m.rcpt_tos]) == 1
    triggered = [e for e in cloud_events(read_topic(stack, "reminders", lambda rs: False, timeout=5))
                 if e.get("data", {}).get("user_id") == user and e["type"].endswith("triggered.v1")]
    assert len(triggered) == 1, json.dumps(triggered)
