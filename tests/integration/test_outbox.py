"""Every change commits its CloudEvent with it; the relay publishes it, once or again, never not."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from todo.adapters.dead_letters import SqlDeadLetters
from todo.adapters.outbox import _RELAY_LOCK, OutboxRelay, RetryPolicy, Undelivered
from todo.adapters.publishers import InProcessBus, Subscriber
from todo.adapters.tables import outbox
from todo.adapters.unit_of_work import SqlUnitOfWork
from todo.domain.task import TaskFields
from todo.runtime import Runtime
from todo.service import tasks as service
from todo.service.tasks import Context

from .conftest import Api


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_times = fail_times

        self.requests: list[tuple[str, int]] = []

    def publish_many(self, topic: str, messages: Sequence[tuple[str, dict[str, Any]]]) -> Sequence[Undelivered]:
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("broker unreachable")
        self.requests.append((topic, len(messages)))
        if topic == "task-events":  # each change also numbers a message for push-update (test_push)
            self.events.extend((topic, partition_key, cloud_event) for partition_key, cloud_event in messages)
        return ()


def rows(engine: Engine, topic: str = "task-events") -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).where(outbox.c.topic == topic).order_by(outbox.c.id)))


def test_each_change_writes_one_cloudevent_with_the_seed_payload(alice: Api, engine: Engine) -> None:
    task = alice.post("/tasks", json={"title": "t", "tags": ["a"]}).json()
    alice.patch(f"/tasks/{task['id']}", json={"title": "t2"})
    alice.post(f"/tasks/{task['id']}/complete")
    alice.post(f"/tasks/{task['id']}/reopen")
    alice.delete(f"/tasks/{task['id']}")
    events = [json.loads(r.payload) for r in rows(engine)]
    assert [e["data"]["event_type"] for e in events] == ["created", "updated", "completed", "updated", "deleted"]
    assert [e["type"] for e in events] == [f"dev.todo.task.{t}.v1"
                                           for t in ("created", "updated", "completed", "updated", "deleted")]
    assert [e["source"] for e in events] == ["/todo/functions/create-task"] + ["/todo/functions/update-task"] * 4
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["subject"] == str(task["id"])
        assert event["datacontenttype"] == "application/json"
        assert uuid.UUID(event["id"])
        told = {"changes"} if event["data"]["event_type"] in ("updated", "completed") else set()
        assert set(event["data"]) == {"event_type", "task_id", "task_data", "user_id", "timestamp"} | told
        assert event["data"]["user_id"] == "alice" and event["data"]["task_id"] == task["id"]
    assert events[1]["data"]["task_data"]["title"] == "t2"
    assert events[2]["data"]["task_data"]["status"] == "completed"
    # What each change changed, as its writer saw it: a consumer needs no earlier event to know.
    assert [e["data"]["task_data"]["version"] for e in events] == [1, 2, 3, 4, 4]
    assert events[1]["data"]["changes"]["title"] == {"from": "t", "to": "t2"}
    assert events[2]["data"]["changes"]["status"] == {"from": "open", "to": "completed"}
    assert events[3]["data"]["changes"]["status"] == {"from": "completed", "to": "open"}
    assert set(events[3]["data"]["changes"]) == {"status", "completed_at", "updated_at", "version"}
    assert len({e["id"] for e in events}) == 5
    assert {r.topic for r in rows(engine)} == {"task-events"}
    assert {r.partition_key for r in rows(engine)} == {"alice"}


def test_a_failed_write_leaves_no_event(alice: Api, engine: Engine) -> None:
    alice.post("/tasks", json={"title": ""})
    alice.patch("/tasks/1", json={"title": "x"})
    assert rows(engine) == []


def test_relay_publishes_in_order_and_marks_rows(runtime: Runtime, engine: Engine) -> None:
    ctx = Context("alice", "create-task", datetime.now(UTC))
    for i in range(5):
        service.create_task(runtime.uow(), ctx, TaskFields(title=f"t{i}"))  # committed, relay never told
    recorder = Recorder()
    relay = OutboxRelay(engine, recorder, batch=2)
    assert relay.pending() == 10  # each change: its task event and its push-update message
    assert relay.drain() == 10
    assert [e[2]["data"]["task_data"]["title"] for e in recorder.events] == [f"t{i}" for i in range(5)]
    # One request per topic per batch of two rows (a task event and its push message), not per row.
    assert recorder.requests == [("task-events", 1), ("task-updates", 1)] * 5
    assert relay.pending() == 0 and relay.drain() == 0
    assert all(r.published_at is not None for r in rows(engine))


def test_on_postgresql_a_drain_sends_its_statements_prepared_and_holds_its_lock_while_it_publishes(
        runtime: Runtime, engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("pg8000's prepared statements and advisory locks: PostgreSQL only")
    ctx = Context("alice", "create-task", datetime.now(UTC))
    for i in range(3):
        service.create_task(runtime.uow(), ctx, TaskFields(title=f"t{i}"))
    through_sqlalchemy: list[str] = []

    def seen(*args: Any) -> None:
        through_sqlalchemy.append(args[2])

    sa_event.listen(engine, "before_cursor_execute", seen)
    other_relay_could_lock: list[bool] = []

    class Probe(Recorder):
        def publish_many(self, topic: str, messages: Sequence[Any]) -> Sequence[Undelivered]:
            with engine.connect() as other:  # another relay, another process: the lock is taken
                other_relay_could_lock.append(other.execute(text("SELECT pg_try_advisory_lock(:id)"),
                                                            {"id": _RELAY_LOCK}).scalar_one())
                other.rollback()
            return super().publish_many(topic, messages)

    relay = OutboxRelay(engine, Probe())
    assert relay.drain() == 6
    sa_event.remove(engine, "before_cursor_execute", seen)
    assert [s for s in through_sqlalchemy if "pg_try_advisory_lock" not in s] == []  # the drain's own: prepared
    assert other_relay_could_lock == [False] * 4  # three waves of task-events (one user), one of task-updates
    assert relay.pending() == 0 and relay.drain() == 0
    assert all(r.published_at is not None for r in rows(engine, "task-events") + rows(engine, "task-updates"))


def test_a_batch_goes_out_per_topic_in_waves_of_one_row_per_user_and_a_self_ordered_topic_in_one_request(
        runtime: Runtime, engine: Engine) -> None:
    for i in range(3):
        for user in ("alice", "bob", "carol"):
            service.create_task(runtime.uow(), Context(user, "create-task", datetime.now(UTC)),
                                TaskFields(title=f"{user} {i}"))
    recorder = Recorder()
    assert OutboxRelay(engine, recorder, batch=500).drain() == 18
    # Three users' rows share a request; a user's second row waits for the broker to confirm the first.
    # push-update orders each user's messages by seq itself (test_push): its topic needs no waves.
    assert recorder.requests == [("task-events", 3)] * 3 + [("task-updates", 9)]
    assert [e[2]["data"]["task_data"]["title"] for e in recorder.events] == [
        f"{user} {i}" for i in range(3) for user in ("alice", "bob", "carol")]
    assert all(r.published_at is not None for r in rows(engine) + rows(engine, "task-updates"))


class TwoLanes:
    """A broker whose task-events calls wait (up to 5 s) until a task-updates call has arrived: the relay
    gets through only when it sends the two topics side by side."""

    def __init__(self, refuse: str | None = None) -> None:
        self.updates_seen = threading.Event()
        self.overlapped: list[bool] = []
        self.refuse = refuse

    def publish_many(self, topic: str, messages: Sequence[tuple[str, dict[str, Any]]]) -> Sequence[Undelivered]:
        if topic == "task-updates":
            self.updates_seen.set()
        else:
            self.overlapped.append(self.updates_seen.wait(5))
        if topic == self.refuse:
            raise ConnectionError("this topic's partition leader is away")
        return ()


def test_with_parallel_topics_the_self_ordered_topic_is_drained_beside_the_others(
        runtime: Runtime, engine: Engine) -> None:
    for i in range(2):
        service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)),
                            TaskFields(title=f"t{i}"))
    broker = TwoLanes()
    relay = OutboxRelay(engine, broker, parallel_topics=True)
    relay.start(sweep_seconds=60)
    try:
        relay.kick()
        deadline = time.monotonic() + 15
        while relay.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        relay.stop()
    assert relay.pending() == 0
    # alice's two task events went in two waves; the first waited for the push messages, which did not
    # wait for it: a long drain of waves no longer holds back what a user sees on their socket.
    assert broker.overlapped[0] is True


def test_a_topic_the_broker_refuses_keeps_its_rows_while_the_other_topics_rows_are_delivered(
        runtime: Runtime, engine: Engine) -> None:
    service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), TaskFields(title="t"))
    relay = OutboxRelay(engine, TwoLanes(refuse="task-events"), parallel_topics=True)
    try:
        assert relay.drain() == 1
    finally:
        relay.stop()
    assert [r.published_at is None for r in rows(engine)] == [True]
    assert rows(engine)[0].attempts == 1
    assert [r.published_at is not None for r in rows(engine, "task-updates")] == [True]


class SlowFirstUpdate:
    """A broker whose first task-updates request stays under way (up to 5 s) until another one arrives;
    while it waits, a new change is committed and the relay kicked, as create-task does after a commit.
    ``refuse_first``: that first request then fails, as daprd's would with Kafka away."""

    def __init__(self, runtime: Runtime, refuse_first: bool = False) -> None:
        self.runtime = runtime
        self.refuse_first = refuse_first
        self.relay: OutboxRelay | None = None
        self.requests: list[list[str]] = []  # each task-updates request's task titles, as they arrive
        self.another = threading.Event()
        self.overlapped: list[bool] = []

    def publish_many(self, topic: str, messages: Sequence[tuple[str, dict[str, Any]]]) -> Sequence[Undelivered]:
        if topic != "task-updates":
            return ()
        self.requests.append([event["data"]["message"]["task"]["title"] for _key, event in messages])
        if len(self.requests) > 1:
            self.another.set()
            return ()
        create(self.runtime, "alice", "committed while the first is under way")
        assert self.relay is not None
        self.relay.kick()
        self.overlapped.append(self.another.wait(5))
        if self.refuse_first:
            raise ConnectionError("the partition leader went away")
        return ()


def test_a_push_committed_while_the_previous_push_request_waits_at_the_broker_goes_out_before_its_answer(
        runtime: Runtime, engine: Engine) -> None:
    create(runtime, "alice", "first")
    broker = SlowFirstUpdate(runtime)
    relay = broker.relay = OutboxRelay(engine, broker, parallel_topics=True)
    try:
        relay.drain()
        relay.drain()  # the second task event: its drainer had gone by when it was committed
    finally:
        relay.stop()
    # push-update orders a user's messages by seq itself: the second need not wait for the first's answer.
    assert broker.overlapped == [True]
    assert broker.requests == [["first"], ["committed while the first is under way"]]
    assert relay.pending() == 0


def test_a_push_request_refused_while_another_is_under_way_keeps_its_rows_and_the_others_are_marked(
        runtime: Runtime, engine: Engine) -> None:
    create(runtime, "alice", "first")
    broker = SlowFirstUpdate(runtime, refuse_first=True)
    relay = broker.relay = OutboxRelay(engine, broker, parallel_topics=True)
    try:
        relay.drain()
        (first, second) = rows(engine, "task-updates")
        assert (first.published_at, first.attempts) == (None, 1) and "partition leader" in first.last_error
        assert second.published_at is not None
        relay.drain()  # the next sweep: the refused row goes again, with its id
    finally:
        relay.stop()
    assert broker.requests[-1] == ["first"]
    assert relay.pending() == 0


class HeldUpdates:
    """A broker that keeps every task-updates request under way until ``release``, counting them."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.under_way = self.most = 0
        self.reached = threading.Event()

    def publish_many(self, topic: str, messages: Sequence[tuple[str, dict[str, Any]]]) -> Sequence[Undelivered]:
        if topic != "task-updates":
            return ()
        with self.lock:
            self.under_way += 1
            self.most = max(self.most, self.under_way)
            if self.under_way == 2:
                self.reached.set()
        self.release.wait(10)
        with self.lock:
            self.under_way -= 1
        return ()


def test_the_push_requests_under_way_at_once_are_bounded_and_the_rows_behind_them_wait_for_a_free_place(
        runtime: Runtime, engine: Engine) -> None:
    broker = HeldUpdates()
    relay = OutboxRelay(engine, broker, parallel_topics=True, in_flight=2)
    relay.start(sweep_seconds=60)
    try:
        for i in range(5):
            create(runtime, "alice", f"t{i}")
            relay.kick()
            time.sleep(0.1)  # a commit at a time, each its own request while there is room
        assert broker.reached.wait(10)
        assert broker.most == 2
        broker.release.set()
        deadline = time.monotonic() + 15
        while relay.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        broker.release.set()
        relay.stop()
    assert broker.most == 2
    assert relay.pending() == 0


def test_a_commit_kicks_the_drainers_of_the_topics_it_wrote_and_no_other(runtime: Runtime, engine: Engine) -> None:
    relay = OutboxRelay(engine, Recorder(), parallel_topics=True)  # not started: the kicks stay set
    waves, pushes = (next(d for d in relay._drainers if d.inside == inside) for inside in (False, True))

    def kicked() -> tuple[bool, bool]:
        seen = (waves.kicked.is_set(), pushes.kicked.is_set())
        waves.kicked.clear()
        pushes.kicked.clear()
        return seen

    with SqlUnitOfWork(engine, after_commit=relay.kick) as uow:  # a notification's in-app message
        uow.changes.append("alice", {"type": "reminder"}, datetime.now(UTC))
        uow.commit()
    assert kicked() == (False, True)
    with SqlUnitOfWork(engine, after_commit=relay.kick) as uow:  # as a notification's attempts: no outbox row
        uow.commit()
    assert kicked() == (False, False)
    service.create_task(SqlUnitOfWork(engine, after_commit=relay.kick), Context("alice", "create-task",
                        datetime.now(UTC)), TaskFields(title="t"))
    assert kicked() == (True, True)  # its task event and its push
    relay.kick()  # the sweep's and the gateway's start: everyone
    assert kicked() == (True, True)
    relay.stop()


class ReorderingBroker:
    """A broker as daprd's bulk publish is: the entries of one request land in any order (here: reversed),
    and a failed request may have stored some of them (here: the first call stores half, then raises)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []  # (partition key, title) as the topic holds them
        self.calls = 0

    def publish_many(self, topic: str, messages: Sequence[tuple[str, dict[str, Any]]]) -> Sequence[Undelivered]:
        if topic != "task-events":
            return ()
        self.calls += 1
        landed = [(key, event["data"]["task_data"]["title"]) for key, event in reversed(messages)]
        if self.calls == 1:
            self.log.extend(landed[: len(landed) // 2 or 1])
            raise ConnectionError("the broker restarted mid-request")
        self.log.extend(landed)
        return ()


def test_after_a_partly_failed_publish_no_row_of_a_user_reaches_the_broker_before_an_earlier_one(
        runtime: Runtime, engine: Engine) -> None:
    titles = {"alice": [f"alice {i}" for i in range(4)], "bob": [f"bob {i}" for i in range(4)]}
    for i in range(4):
        for user in ("alice", "bob"):
            service.create_task(runtime.uow(), Context(user, "create-task", datetime.now(UTC)),
                                TaskFields(title=titles[user][i]))
    broker = ReorderingBroker()
    relay = OutboxRelay(engine, broker, batch=500)
    assert relay.drain() == 0  # the first request failed: the drain stops, every row stays pending
    relay.drain()
    assert relay.pending() == 0
    for user, expected in titles.items():
        first_seen = list(dict.fromkeys(title for key, title in broker.log if key == user))
        assert first_seen == expected  # republished duplicates are fine; an overtaking row is not


def test_publish_failure_keeps_rows_and_the_next_sweep_sends_them_with_the_same_ids(
        runtime: Runtime, engine: Engine) -> None:
    ctx = Context("alice", "create-task", datetime.now(UTC))
    for i in range(3):
        service.create_task(runtime.uow(), ctx, TaskFields(title=f"t{i}"))
    ids = [json.loads(r.payload)["id"] for r in rows(engine)]
    recorder = Recorder(fail_times=1)
    relay = OutboxRelay(engine, recorder)
    assert relay.drain() == 0
    assert relay.pending() == 6
    assert rows(engine)[0].attempts == 1 and "broker unreachable" in rows(engine)[0].last_error
    assert relay.drain() == 6
    assert [e[2]["id"] for e in recorder.events] == ids


def test_crash_after_publish_before_mark_republishes_the_same_event(runtime: Runtime, engine: Engine) -> None:
    service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), TaskFields(title="t"))
    recorder = Recorder()
    OutboxRelay(engine, recorder).drain()
    with engine.begin() as conn:  # as if the process died before its UPDATE committed
        conn.execute(update(outbox).values(published_at=None))
    OutboxRelay(engine, recorder).drain()
    assert len(recorder.events) == 2
    assert recorder.events[0][2] == recorder.events[1][2]  # same id: the consumer drops the second


def test_http_write_is_published_right_after_commit(runtime: Runtime, alice: Api, engine: Engine) -> None:
    received: list[dict[str, Any]] = []

    async def on_event(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return JSONResponse({"status": "SUCCESS"})

    runtime.bus.subscribe("task-events", Subscriber("probe", Starlette(routes=[
        Route("/events", on_event, methods=["POST"])]), "/events"))
    # The test settings sweep once an hour and the start-up drain runs once: past the first write,
    # only the kick after each commit can deliver in time.
    for count, title in enumerate(["ping", "pong", "pang"], start=1):
        alice.post("/tasks", json={"title": title})
        deadline = time.monotonic() + 10
        while len(received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [e["data"]["task_data"]["title"] for e in received] == ["ping", "pong", "pang"]
    deadline = time.monotonic() + 10  # the task events are out; their push messages follow them
    while runtime.relay.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runtime.relay.pending() == 0


def dead_letters(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return SqlDeadLetters(conn).latest()[::-1]


@pytest.mark.parametrize(("status", "body", "delivered", "dead"), [
    (200, {"status": "SUCCESS"}, True, False),
    (200, {}, True, False),
    (200, {"status": "DROP", "reason": "no such thing"}, True, True),
    (404, {}, True, True),
    (500, {}, False, False),
    (200, {"status": "RETRY"}, False, False),
])
def test_in_process_bus_reads_subscriber_answers_as_dapr_does(
        runtime: Runtime, engine: Engine, status: int, body: dict[str, str], delivered: bool, dead: bool) -> None:
    async def subscriber(request: Request) -> Response:
        await request.body()
        return JSONResponse(body, status_code=status)

    bus = InProcessBus()
    bus.subscribe("task-events", Subscriber("probe", Starlette(routes=[Route("/", subscriber, methods=["POST"])])))
    service.create_task(runtime.uow(), Context("alice", "create-task", datetime.now(UTC)), TaskFields(title="t"))
    relay = OutboxRelay(engine, bus)
    relay.drain()
    assert (relay.pending() == 0) is delivered
    assert bool(dead_letters(engine)) is dead
    if dead:
        assert dead_letters(engine)[0]["consumer"] == "probe"
        assert dead_letters(engine)[0]["reason"] == body.get("reason", "HTTP 404")
    if not delivered:  # asked to retry: it waits for its backoff, then is offered again
        (row,) = rows(engine)
        assert row.attempts == 1 and row.next_attempt_at is not None and relay.next_retry_at is not None


class Probe:
    """A subscriber that answers 500 for the events ``failing`` names (their task titles) while it is set."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.seen: list[str] = []
        self.app = Starlette(routes=[Route("/", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        event = json.loads(await request.body())
        title = event["data"]["task_data"]["title"]
        if title in self.failing:
            return JSONResponse({"status": "RETRY", "reason": "the database is busy"}, status_code=500)
        self.seen.append(title)
        return JSONResponse({"status": "SUCCESS"})


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def relay_with(engine: Engine, probe: Probe, clock: Clock, **policy: Any) -> OutboxRelay:
    bus = InProcessBus()
    bus.subscribe("task-events", Subscriber("probe", probe.app))
    return OutboxRelay(engine, bus, clock=clock, retry=RetryPolicy(**policy))


def create(runtime: Runtime, user: str, title: str) -> None:
    service.create_task(runtime.uow(), Context(user, "create-task", datetime.now(UTC)), TaskFields(title=title))


def test_a_row_a_subscriber_keeps_asking_to_retry_becomes_a_dead_letter_after_the_budget(
        runtime: Runtime, engine: Engine) -> None:
    probe, clock = Probe(), Clock()
    probe.failing.add("stuck")
    create(runtime, "alice", "stuck")
    relay = relay_with(engine, probe, clock, attempts=3, first_delay=1.0)
    relay.drain()
    (row,) = rows(engine)
    assert row.attempts == 1 and relay.next_retry_at == clock.now + timedelta(seconds=1)
    relay.drain()  # before its backoff ends the row is not offered again
    assert rows(engine)[0].attempts == 1
    clock.advance(1)
    relay.drain()
    assert rows(engine)[0].attempts == 2 and relay.next_retry_at == clock.now + timedelta(seconds=2)
    clock.advance(2)
    relay.drain()
    assert relay.pending() == 0 and relay.next_retry_at is None
    (letter,) = dead_letters(engine)
    assert (letter["consumer"], letter["topic"], letter["attempts"]) == ("probe", "task-events", 3)
    assert letter["reason"] == "retry budget spent (3 attempts); last: the database is busy"
    assert letter["event"]["data"]["task_data"]["title"] == "stuck"


def test_one_users_waiting_row_holds_back_that_users_later_rows_and_nobody_elses(
        runtime: Runtime, engine: Engine) -> None:
    probe, clock = Probe(), Clock()
    probe.failing.add("alice 1")
    for user, title in (("alice", "alice 1"), ("bob", "bob 1"), ("alice", "alice 2"), ("bob", "bob 2")):
        create(runtime, user, title)
    relay = relay_with(engine, probe, clock)
    relay.drain()
    assert probe.seen == ["bob 1", "bob 2"]  # alice 2 waits behind alice 1: per-user order
    create(runtime, "bob", "bob 3")
    relay.drain()  # alice's rows still wait for the backoff; bob's new one goes at once
    assert probe.seen == ["bob 1", "bob 2", "bob 3"]
    probe.failing.clear()
    clock.advance(RetryPolicy().first_delay)
    relay.drain()
    assert probe.seen == ["bob 1", "bob 2", "bob 3", "alice 1", "alice 2"]
    assert relay.pending() == 0 and dead_letters(engine) == []


def test_a_refused_row_is_a_dead_letter_at_once_and_the_rows_behind_it_go_on(
        runtime: Runtime, engine: Engine) -> None:
    async def refuse_poison(request: Request) -> Response:
        event = json.loads(await request.body())
        if event["data"]["task_data"]["title"] == "poison":
            return JSONResponse({"status": "DROP", "reason": "never"})
        return JSONResponse({"status": "SUCCESS"})

    bus = InProcessBus()
    bus.subscribe("task-events", Subscriber("picky", Starlette(routes=[Route("/", refuse_poison, methods=["POST"])])))
    for title in ("poison", "after"):
        create(runtime, "alice", title)
    relay = OutboxRelay(engine, bus)
    assert relay.drain() == 3  # "after", and the two push messages; "poison" is settled as a dead letter
    assert relay.pending() == 0
    assert [(d["consumer"], d["reason"]) for d in dead_letters(engine)] == [("picky", "never")]




def test_an_outbox_row_that_holds_no_cloudevent_is_a_dead_letter_and_the_drain_goes_on(
        runtime: Runtime, engine: Engine) -> None:
    with engine.begin() as conn:
        for n, payload in enumerate(["not json at all", "[1, 2]"]):
            conn.execute(insert(outbox).values(event_id=f"junk-{n}", topic="task-events", partition_key="alice",
                                               payload=payload, created_at=datetime.now(UTC)))
    create(runtime, "alice", "after the junk")
    recorder = Recorder()
    relay = OutboxRelay(engine, recorder)
    assert relay.drain() == 2  # the task event and its push message
    assert [e[2]["data"]["task_data"]["title"] for e in recorder.events] == ["after the junk"]
    assert relay.pending() == 0
    assert [(d["consumer"], d["event"], d["reason"]) for d in dead_letters(engine)] == [
        ("outbox-relay", "not json at all", "the outbox row holds no CloudEvent JSON"),
        ("outbox-relay", "[1, 2]", "the outbox row holds no CloudEvent JSON")]
