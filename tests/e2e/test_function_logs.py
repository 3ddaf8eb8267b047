"""A function's logs as an operator reads them: its real stderr under functions-framework, JSON lines with
the ids that tie a failure to its request or event, and no credential anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from todo.edge.auth import mint
from todo.settings import Settings
from todo_dev import ports
from todo_dev.ready import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
SECRET = "logs-secret-" + "l" * 40
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
pytestmark = pytest.mark.e2e


class Function:
    """One function under functions-framework, its database out of reach: every request fails inside."""

    def __init__(self, name: str, port: int, tmp_path: Path) -> None:
        self.port = port
        self.stderr = tmp_path / f"{name}.stderr"
        env = {"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(ROOT / "shared"),
               "TODO_DATABASE_URL": f"postgresql+pg8000://todo@127.0.0.1:{ports.test_port(69)}/todo",
               "TODO_JWT_SECRET": SECRET, "TODO_EVENTS": "dapr", "TODO_LOG_LEVEL": "INFO"}
        argv = [sys.executable, "-m", "functions_framework", "--asgi", "--target", name.replace("-", "_"),
                "--source", str(ROOT / "functions" / name / "main.py"), "--port", str(port)]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr.open("wb"),
                                     start_new_session=True)
        wait_until_ready(f"http://127.0.0.1:{port}/healthz", process=self.proc, what=name)

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]  # every line is a JSON object, or this fails

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture
def function(tmp_path: Path) -> Iterator[Any]:
    started: list[Function] = []

    def start(name: str, n: int) -> Function:
        started.append(Function(name, ports.test_port(n), tmp_path))
        return started[-1]

    yield start
    for f in started:
        f.stop()


def failure(entries: list[dict[str, Any]], message: str) -> dict[str, Any]:
    found = [e for e in entries if e["message"].startswith(message)]
    assert found, [e["message"] for e in entries]
    return found[-1]


def test_an_event_that_fails_is_logged_with_its_ids_trace_and_traceback(function: Any) -> None:
    fn = function("on-task-event", 66)
    event_id = str(uuid.uuid4())
    event = {"specversion": "1.0", "id": event_id, "source": "/todo/functions/update-task",
             "type": "dev.todo.task.completed.v1", "traceparent": TRACEPARENT, "time": "2026-01-01T09:00:00Z",
             "datacontenttype": "application/json",
             "data": {"event_type": "completed", "task_id": 41, "user_id": "alice",
                      "timestamp": "2026-01-01T09:00:00Z",
                      "task_data": {"id": 41, "series": {"id": 7, "occurrence": 2},
                                    "due_at": "2026-01-01T09:00:00Z", "completed_at": "2026-01-01T09:00:00Z"}}}
    answer = httpx.post(f"http://127.0.0.1:{fn.port}/events", json=event,
                        headers={"content-type": "application/cloudevents+json"}, timeout=60)
    assert answer.status_code == 500 and answer.json()["status"] == "RETRY"  # the database is away
    line = failure(fn.entries(), "event failed")
    assert line["function"] == "on-task-event" and line["level"] == "error"
    assert (line["ce_id"], line["ce_source"], line["ce_type"]) == (event_id, event["source"], event["type"])
    assert (line["task_id"], line["user_id"], line["traceparent"]) == (41, "alice", TRACEPARENT)
    assert line["error"]["type"] and line["error"]["message"]
    assert "Traceback (most recent call last)" in line["error"]["traceback"]


def test_a_request_that_fails_is_logged_with_its_user_and_trace_and_never_its_token(function: Any) -> None:
    fn = function("create-task", 67)
    token = mint(Settings(jwt_secret=SECRET), "bob")
    answer = httpx.post(f"http://127.0.0.1:{fn.port}/tasks", json={"title": "secret plans"}, timeout=60,
                        headers={"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT})
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"  # the database is away
    entries = fn.entries()
    line = failure(entries, "database unavailable")
    assert line["level"] == "warning"
    assert (line["function"], line["operation"], line["user_id"]) == ("create-task", "createTask", "bob")
    assert line["traceparent"] == TRACEPARENT and line["error"]["traceback"]
    text = fn.stderr.read_text()
    assert token not in text and SECRET not in text
    assert "secret plans" not in text  # a task body is never logged, not even in a failed statement
