"""One tenant cannot degrade another, embedded: `todo serve` in its own process, over real HTTP and WebSocket.

User A plants each kind of poison the hostile-input probe found (issue 10); user B's create → audit entry,
completion → next instance and WebSocket push all still happen within 15 s, and each of B's POST /tasks
answers within 5 s throughout. These are the test's functional deadlines, not a benchmark.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from todo_dev import ports
from todo_dev.ready import wait_until_ready

TODO = str(Path(sys.executable).with_name("todo"))
DEADLINE = 15.0  # seconds for each of B's effects
ANSWER = 5.0  # seconds for each of B's POST /tasks
DAILY = {"timezone": "America/New_York", "recurrence": {"rrule": "FREQ=DAILY"}}


class Embedded:
    def __init__(self, data_dir: Path) -> None:
        self.env = {**os.environ, "TODO_DATA_DIR": str(data_dir), "TODO_OUTBOX_SWEEP_SECONDS": "0.5"}
        for name in ("TODO_DATABASE_URL", "TODO_JWT_SECRET", "TODO_JWT_JWKS_URL", "TODO_EVENTS"):
            self.env.pop(name, None)
        self.database = data_dir / "todo.sqlite3"
        self.url = f"http://127.0.0.1:{ports.test_port(56)}"
        self.proc: subprocess.Popen[bytes] | None = None

    def todo(self, *args: str) -> str:
        return subprocess.run([TODO, *args], env=self.env, check=True, capture_output=True, text=True).stdout

    def start(self) -> None:
        self.todo("migrate")
        self.proc = subprocess.Popen([TODO, "serve", "--port", str(ports.test_port(56))], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until_ready(f"{self.url}/healthz", timeout=30, process=self.proc, what="todo serve")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def client(self, user: str, roles: str = "user") -> httpx.Client:
        token = self.todo("token", "--sub", user, "--roles", roles, "--ttl", "1h").strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=ANSWER)

    def socket(self, user: str) -> ClientConnection:
        token = self.todo("token", "--sub", user, "--ttl", "1h").strip()
        return connect(f"ws://127.0.0.1:{ports.test_port(56)}/ws?since=0",
                       subprotocols=["bearer", token], open_timeout=10)  # type: ignore[list-item]

    def publish(self, user: str, event: dict[str, Any] | str) -> None:
        """Put a hand-made event on task-events (the embedded topic is the outbox the relay drains)."""
        payload = event if isinstance(event, str) else json.dumps(event)
        with sqlite3.connect(self.database, timeout=30) as conn:
            conn.execute("INSERT INTO outbox (event_id, topic, partition_key, payload, created_at, attempts) "
                         "VALUES (?, 'task-events', ?, ?, ?, 0)",
                         (str(uuid.uuid4()), user, payload, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")))


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    server = Embedded(tmp_path / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def completion(task: dict[str, Any], user: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = {**task, "status": "completed", "completed_at": now, "version": task["version"] + 1, **changes}
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/todo/functions/update-task",
            "type": "dev.todo.task.completed.v1", "subject": str(task["id"]), "time": now,
            "datacontenttype": "application/json", "partitionkey": user,
            "data": {"event_type": "completed", "task_id": task["id"], "task_data": data, "user_id": user,
                     "timestamp": now}}


def within(seconds: float, check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.1)


def plant_every_kind_of_poison(server: Embedded, a: httpx.Client) -> dict[str, str]:
    """A's poison, every kind the probe found; returns the ids of the hand-made events among it."""
    series = a.post("/tasks", json={"title": "a's series", "due_at": "2027-03-12T16:00:00Z", **DAILY}).json()
    planted: dict[str, str] = {}
    # A recurring task due 0001-01-01, completed: the recurrence overflowed (found 1). The edge refuses it
    # now; the same completion then arrives hand-made, on a series of its own: the consumer ends that series
    # (a due date out of range is a deterministic end, todo.domain.recurrence), or dead-letters it.
    dawn = a.post("/tasks", json={"title": "dawn", "due_at": "0001-01-01T00:00:00Z", **DAILY})
    assert dawn.status_code == 422, dawn.text
    dawn_series = a.post("/tasks", json={"title": "dawn's series", "due_at": "2027-03-12T16:00:00Z",
                                         **DAILY}).json()
    server.publish("a", completion(dawn_series, "a", due_at="0001-01-01T00:00:00Z"))
    # An event that makes the consumer raise on every attempt: an occurrence past the column's range.
    raising = completion(series, "a", series={**series["series"], "occurrence": 2**63 - 1})
    server.publish("a", raising)
    planted["raising"] = raising["id"]
    # Malformed payloads straight onto the topic: data of the wrong shape, and a body that is no CloudEvent.
    malformed = {**completion(series, "a"), "data": {"event_type": "completed", "task_id": "one"}}
    server.publish("a", malformed)
    planted["malformed"] = malformed["id"]
    server.publish("a", "{not a cloudevent")
    # A NUL in a field: refused at the write, so it never reaches a consumer (found 4).
    nul = a.post("/tasks", content=json.dumps({"title": "a\u0000b", "tags": ["x\u0000"]}),
                 headers={"content-type": "application/json"})
    assert nul.status_code == 422, nul.text
    return planted


@pytest.mark.e2e
def test_one_users_poison_delays_no_other_users_effects(embedded: Embedded) -> None:
    a, b, auditor = embedded.client("a"), embedded.client("b"), embedded.client("carol", "auditor")
    with embedded.socket("b") as socket:
        planted = plant_every_kind_of_poison(embedded, a)

        started = time.monotonic()
        created = b.post("/tasks", json={"title": "b's task"})  # httpx raises past ANSWER seconds
        assert created.status_code == 201
        recurring = b.post("/tasks", json={"title": "b's series", "due_at": "2027-03-12T16:00:00Z", **DAILY}).json()
        assert b.post(f"/tasks/{recurring['id']}/complete").status_code == 200
        for n in range(5):  # B keeps writing while A's poison goes through the pipeline
            assert b.post("/tasks", json={"title": f"b {n}"}).status_code == 201

        def audited() -> bool:
            items = auditor.get("/audit", params={"user_id": "b", "task_id": created.json()["id"]}).json()["items"]
            return any(e["action"] == "task.created" for e in items)

        within(DEADLINE - (time.monotonic() - started), audited, "b's create in the audit trail")

        def next_instance() -> bool:
            return any(t["series"] == {"id": recurring["series"]["id"], "occurrence": 2}
                       for t in b.get("/tasks").json()["items"])

        within(DEADLINE - (time.monotonic() - started), next_instance, "b's next instance")

        pushed: list[dict[str, Any]] = []

        def pushed_created() -> bool:
            with contextlib.suppress(TimeoutError):
                pushed.append(json.loads(socket.recv(timeout=0.5)))
            return any(m.get("type") == "task.created" and m["task"]["id"] == created.json()["id"] for m in pushed)

        within(DEADLINE - (time.monotonic() - started), pushed_created, "b's change on the WebSocket")

    # A's poison was settled, not skipped: each hand-made event is a dead letter with its reason.
    def dead() -> list[dict[str, Any]]:
        letters = [json.loads(line) for line in embedded.todo("dead-letters").splitlines()]
        return letters if set(planted.values()) <= {d["event_id"] for d in letters} else []

    letters = within(DEADLINE, dead, "a's poison as dead letters")
    assert all(d["reason"] for d in letters)
    raised = [d for d in letters if d["event_id"] == planted["raising"]]
    assert [(d["consumer"], d["attempts"]) for d in raised] == [("on-task-event", 3)]  # raised on every attempt
    assert any(d["event"] == "{not a cloudevent" and d["consumer"] == "outbox-relay" for d in letters)
