"""Reminders: planned with the task, fired once by the scan, delivered on every chosen channel."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook as ReferenceVerifier
from werkzeug import Request, Response

from tests.smtp_inbox import Inbox
from todo.adapters.channels import Channels, new_webhook_secret
from todo.adapters.tables import notification_attempts, outbox, reminders
from todo.domain.task import Reminder, TaskFields
from todo.edge.schemas import NotificationSettingsIn
from todo.runtime import Runtime
from todo.service import reminders as service
from todo.service import tasks
from todo.service.tasks import Context
from todo_dev import ports

from .conftest import Api

SOON = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def rows(engine: Engine, table: Any = reminders) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)))


def events(engine: Engine, topic: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [json.loads(r.payload) for r in conn.execute(select(outbox).where(outbox.c.topic == topic)
                                                            .order_by(outbox.c.id))]


def test_reminders_are_planned_with_the_task_and_announced(alice: Api, engine: Engine) -> None:
    task = alice.post("/tasks", json={"title": "dentist", "due_at": iso(SOON),
                                      "reminders": [{"before": "PT1H"}, {"at": iso(SOON - timedelta(days=1))}]}).json()
    scheduled = [r for r in rows(engine) if r.status == "scheduled"]
    assert sorted(r.remind_at for r in scheduled) == [SOON - timedelta(days=1), SOON - timedelta(hours=1)]
    announced = events(engine, "reminders")
    assert [e["type"] for e in announced] == ["dev.todo.reminder.scheduled.v1"] * 2
    assert {e["data"]["task_id"] for e in announced} == {task["id"]}
    assert set(announced[0]["data"]) >= {"task_id", "title", "due_at", "remind_at", "user_id"}


def test_moving_the_due_date_reschedules_and_closing_the_task_cancels(alice: Api, engine: Engine) -> None:
    task = alice.post("/tasks", json={"title": "t", "due_at": iso(SOON), "reminders": [{"before": "PT1H"}]}).json()
    alice.patch(f"/tasks/{task['id']}", json={"due_at": iso(SOON + timedelta(days=1))})
    assert [(r.status, r.remind_at) for r in rows(engine)] == [
        ("cancelled", SOON - timedelta(hours=1)), ("scheduled", SOON + timedelta(days=1) - timedelta(hours=1))]
    alice.patch(f"/tasks/{task['id']}", json={"title": "renamed"})  # no reminder change: nothing moves
    assert len(rows(engine)) == 2
    alice.post(f"/tasks/{task['id']}/complete")
    assert {r.status for r in rows(engine)} == {"cancelled"}


def test_reminders_in_the_past_are_not_planned(alice: Api, engine: Engine) -> None:
    alice.post("/tasks", json={"title": "t", "reminders": [{"at": "2020-01-01T00:00:00Z"}]})
    assert rows(engine) == []


def test_a_due_reminder_is_triggered_once_whatever_the_number_of_scans(alice: Api, runtime: Runtime,
                                                                       engine: Engine) -> None:
    alice.post("/tasks", json={"title": "t", "due_at": iso(SOON), "reminders": [{"before": "PT1H"}]})
    later = SOON
    assert service.scan(runtime.uow(), "on-reminder", later) == 1
    assert service.scan(runtime.uow(), "on-reminder", later) == 0
    triggered = [e for e in events(engine, "reminders") if e["type"].endswith("triggered.v1")]
    assert len(triggered) == 1 and triggered[0]["data"]["reminder_id"] == rows(engine)[0].id


def test_a_tick_fires_each_reminder_when_it_falls_due_until_the_next_tick(
        alice: Api, runtime: Runtime, engine: Engine) -> None:
    """Between two ticks the scan sleeps until the next reminder is due: it fires on time, not up to a
    period late. The clock is a fake one that sleeping moves on."""
    start = SOON - timedelta(hours=1)
    for seconds in (0.3, 0.7, 0.71, 5.0):
        alice.post("/tasks", json={"title": f"t{seconds}", "due_at": iso(SOON),
                                   "reminders": [{"at": iso(start + timedelta(seconds=seconds))}]})
    clock = [start]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        clock[0] += timedelta(seconds=seconds)

    fired = service.fire_until(runtime.uow, "on-reminder", lambda: clock[0], start + timedelta(seconds=1), sleep)
    assert fired == 3  # the one due after the window is the next tick's
    assert slept == [0.3, 0.4, 0.05]  # to each due time, but no scans closer than 50 ms apart
    triggered = {r.remind_at: r.triggered_at for r in rows(engine) if r.status == "triggered"}
    assert triggered == {start + timedelta(seconds=0.3): start + timedelta(seconds=0.3),
                         start + timedelta(seconds=0.7): start + timedelta(seconds=0.7),
                         start + timedelta(seconds=0.71): start + timedelta(seconds=0.75)}
    assert [r.status for r in rows(engine)][-1] == "scheduled"


def test_concurrent_scanners_trigger_each_reminder_once(alice: Api, runtime: Runtime, engine: Engine) -> None:
    for i in range(40):
        alice.post("/tasks", json={"title": f"t{i}", "due_at": iso(SOON), "reminders": [{"before": f"PT{i + 1}M"}]})
    counts: list[int] = []

    def scanner() -> None:
        for _ in range(5):
            counts.append(service.scan(runtime.uow(), "on-reminder", SOON, limit=7))

    threads = [threading.Thread(target=scanner) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 40
    triggered = [e for e in events(engine, "reminders") if e["type"].endswith("triggered.v1")]
    assert len({e["data"]["reminder_id"] for e in triggered}) == len(triggered) == 40


def test_snooze_rearms_and_is_validated(alice: Api, engine: Engine) -> None:
    task = alice.post("/tasks", json={"title": "t"}).json()
    response = alice.post(f"/tasks/{task['id']}/snooze", json={"for": "PT10M"})
    assert response.status_code == 200
    assert [r.spec for r in rows(engine)] == ["snooze"]
    for bad in ({}, {"for": "PT10M", "until": iso(SOON)}, {"until": "2020-01-01T00:00:00Z"}, {"for": "soon"}):
        assert alice.post(f"/tasks/{task['id']}/snooze", json=bad).status_code == 422, bad
    assert alice.post("/tasks/999/snooze", json={"for": "PT1M"}).status_code == 404


def test_notification_settings_round_trip_and_secrets_are_generated(alice: Api, bob: Api) -> None:
    assert alice.get("/me/notifications").json() == {"in_app": True, "email": None, "webhooks": []}
    put = alice.put("/me/notifications", json={"email": "alice@example.com",
                                               "webhooks": [{"url": "https://example.com/hook"}]})
    assert put.status_code == 200
    assert put.json()["webhooks"][0]["secret"].startswith("whsec_")
    assert alice.get("/me/notifications").json() == put.json()
    assert bob.get("/me/notifications").json()["email"] is None
    assert alice.put("/me/notifications", json={"email": "not-an-address"}).status_code == 422
    assert alice.put("/me/notifications", json={"webhooks": [{"url": "ftp://x"}]}).status_code == 422


# -- channels, for real: an SMTP server and an HTTP receiver on loopback ---------------------------


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = ports.test_port(60)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def receiver(httpserver: HTTPServer) -> tuple[list[tuple[dict[str, str], bytes]], list[int], str]:
    received: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []  # answers to give, in order; 204 once they run out

    def answer(request: Request) -> Response:
        received.append(({k.lower(): v for k, v in request.headers.items()}, request.get_data()))
        return Response(status=statuses.pop(0) if statuses else 204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(answer)
    return received, statuses, str(httpserver.url_for("/hook"))


# The SMTP server and the receiver here speak clear text on loopback, which the channels refuse unless
# told (test_channel_tls.py has them over TLS).
CLEAR_TEXT: dict[str, Any] = {"smtp_tls": "none", "webhook_allow_http": True, "webhook_allow_private": True}


# The channel tests below drive the service without the gateway: its ticker and relay would deliver
# the same triggered events in the background and make the counts race.
def choose(runtime: Runtime, **chosen: Any) -> None:
    settings = NotificationSettingsIn.model_validate(chosen).to_domain(new_webhook_secret)
    service.save_settings(runtime.uow(), Context("alice", "test", datetime.now(UTC)), settings)


def triggered_one(runtime: Runtime) -> service.Triggered:
    fields = TaskFields(title="call mum", due_at=SOON, reminders=(Reminder(before=timedelta(minutes=5)),))
    tasks.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), fields)
    service.scan(runtime.uow(), "on-reminder", SOON)
    reminder = rows(runtime.engine)[0]
    return service.Triggered(reminder.id, "alice", reminder.task_id, "call mum", SOON, reminder.remind_at)


def channels(runtime: Runtime, **settings: Any) -> Channels:
    return Channels(runtime.settings.with_(**settings), runtime.engine, sleep=lambda _: None)


def test_every_channel_delivers_once_even_when_the_event_comes_back(
        runtime: Runtime, smtp: tuple[Inbox, int], receiver: Any) -> None:
    inbox, port = smtp
    received, _, url = receiver
    secret = new_webhook_secret()
    choose(runtime, email="alice@example.com", webhooks=[{"url": url, "secret": secret}])
    reminder = triggered_one(runtime)
    chosen = channels(runtime, smtp_host="127.0.0.1", smtp_port=port, **CLEAR_TEXT)
    for _ in range(2):  # the triggered event delivered twice
        outcome = service.notify(runtime.uow(), chosen, reminder, datetime.now(UTC))
        assert set(outcome.values()) == {True}
    assert len(inbox.messages) == 1 and inbox.messages[0].rcpt_tos == ["alice@example.com"]
    assert b"call mum" in inbox.messages[0].content
    assert len(received) == 1
    headers, body = received[0]
    payload = ReferenceVerifier(secret).verify(body, headers)  # the reference implementation agrees
    assert payload["type"] == "reminder" and payload["task_id"] == reminder.task_id
    in_app = [e for e in events(runtime.engine, "task-updates") if e["data"]["message"]["type"] == "reminder"]
    assert len(in_app) == 1
    assert in_app[0]["data"]["message"]["reminder"]["task_id"] == reminder.task_id


def test_a_failing_channel_is_retried_with_backoff_and_blocks_no_other(
        runtime: Runtime, smtp: tuple[Inbox, int], receiver: Any, engine: Engine) -> None:
    inbox, port = smtp
    _, statuses, url = receiver
    statuses.extend([500, 500, 500])
    choose(runtime, in_app=False, email="a@example.com", webhooks=[{"url": url}])
    reminder = triggered_one(runtime)
    waits: list[float] = []
    chosen = Channels(runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=port, **CLEAR_TEXT),
                      runtime.engine, sleep=waits.append)
    outcome = service.notify(runtime.uow(), chosen, reminder, datetime.now(UTC))
    assert outcome == {"email:a@example.com": True, f"webhook:{url}": False}
    assert len(inbox.messages) == 1
    assert waits == [0.0, 0.5, 2.0]
    attempts = [(a.channel, a.attempt, a.ok) for a in rows(engine, notification_attempts)]
    assert attempts == [("email:a@example.com", 1, True), (f"webhook:{url}", 1, False),
                        (f"webhook:{url}", 2, False), (f"webhook:{url}", 3, False)]


def test_webhooks_to_loopback_or_private_addresses_are_refused_unless_allowed(
        runtime: Runtime, receiver: Any) -> None:
    received, _, url = receiver
    choose(runtime, in_app=False, webhooks=[{"url": url}])
    reminder = triggered_one(runtime)
    outcome = service.notify(runtime.uow(), channels(runtime, webhook_allow_http=True), reminder, datetime.now(UTC))
    assert outcome == {f"webhook:{url}": False} and received == []
    assert "non-public address" in rows(runtime.engine, notification_attempts)[0].detail


def test_the_embedded_server_reminds_on_time_by_itself(alice: Api, runtime: Runtime, smtp: tuple[Inbox, int],
                                                       engine: Engine) -> None:
    inbox, port = smtp
    runtime.__dict__["channels"] = Channels(runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=port,
                                                                   smtp_tls="none"),
                                            runtime.engine, on_queued=runtime.relay.kick)
    alice.put("/me/notifications", json={"email": "alice@example.com"})
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    alice.post("/tasks", json={"title": "stand up", "reminders": [{"at": iso(at)}]})
    deadline = time.monotonic() + 15
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(inbox.messages) == 1  # ticker -> scan -> outbox -> on-reminder -> SMTP, nothing called by hand
