"""What ships is what is tested: the stack of this tier runs every process as its image does.

The session stack is built with todo_dev.launch.AsShipped: each function from its own image, built from
the Dockerfile (only ``[project.dependencies]``, its PYTHONPATH, byte-compiled) and started with the
Dockerfile's command line, or its manifest's container command where Kubernetes uses that; the gateway
and the migration from the library image with their manifests' commands. Here one real request goes
through each function, through the gateway, including the paths that load optional modules (webhooks
and email from on-reminder, the notification settings through update-task), and no process may log an
import error or answer 5xx.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pytest_httpserver import HTTPServer
from websockets.sync.client import connect
from werkzeug import Request, Response

from tests.smtp_inbox import Inbox
from todo.edge.auth import mint
from todo.settings import Settings
from todo_dev.launch import AsShipped
from todo_dev.stack import Stack

from .conftest import SECRET, eventually

pytestmark = pytest.mark.system


def test_every_function_runs_from_its_image_with_the_dockerfiles_command(stack: Stack) -> None:
    assert isinstance(stack.launcher, AsShipped)
    for function in stack.functions:
        image = stack.launcher.image(function)
        argv = stack.children[function].proc.args
        assert isinstance(argv, list)
        if function == "push-update":  # its manifest's container command (uvicorn: the WebSocket route)
            assert argv[:4] == ["python", "-m", "uvicorn", "main:app"]
        else:
            assert argv == image.cmd, function  # the Dockerfile's CMD, unchanged
        environ = _environ(stack.children[function].proc.pid)
        assert environ["PYTHONPATH"] == str(image.path("/app/shared"))
        assert environ["PATH"].startswith(str(image.python.parent))
        compiled = list(image.path("/app/shared/todo").rglob("*.pyc"))
        assert compiled, "the image byte-compiles the library"


def test_the_image_holds_only_the_runtime_dependencies(stack: Stack) -> None:
    assert isinstance(stack.launcher, AsShipped)
    image = stack.launcher.image("create-task")
    for module in ("yaml", "pytest", "todo_dev", "hypothesis"):  # tooling and tests only
        found = subprocess.run([str(image.python), "-c", f"import {module}"], env=image.environment(),
                               cwd=image.cwd, capture_output=True)
        assert found.returncode != 0, f"{module} is importable in the image"
    for module in ("httpx", "functions_framework", "todo.gateway", "todo.adapters.channels", "dapr.clients"):
        found = subprocess.run([str(image.python), "-c", f"import {module}"], env=image.environment(),
                               cwd=image.cwd, capture_output=True, text=True)
        assert found.returncode == 0, found.stderr


@pytest.fixture
def inbox(stack: Stack) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=stack.smtp_port)
    controller.start()
    yield inbox
    controller.stop()


def test_one_real_request_reaches_each_function_through_the_gateway(
        stack: Stack, api: Callable[..., httpx.Response], user: str, httpserver: HTTPServer,
        inbox: Inbox) -> None:
    hooks: list[bytes] = []

    def receive(request: Request) -> Response:
        hooks.append(request.get_data())
        return Response(status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    answers: list[tuple[str, int]] = []
    log_start = stack.log_path.stat().st_size

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = api(method, path, user, **kwargs)
        answers.append((f"{method} {path}", response.status_code))
        return response

    # update-task (PUT /me/notifications loads the channels: httpx, smtplib) and query-tasks
    address = f"{user}@example.com"
    chosen = call("PUT", "/me/notifications", json={"email": address,
                                                    "webhooks": [{"url": httpserver.url_for("/hook")}]})
    assert chosen.status_code == 200, chosen.text
    assert call("GET", "/me/notifications").json()["email"] == address
    # create-task: a recurring task with a reminder due in a few seconds (on-reminder: email and webhook)
    due = datetime.now(UTC) + timedelta(seconds=4)
    task = call("POST", "/tasks", json={"title": "closure", "due_at": due.isoformat(),
                                        "recurrence": {"rrule": "FREQ=DAILY"},
                                        "reminders": [{"before": "PT2S"}]}).json()
    assert call("GET", f"/tasks/{task['id']}").status_code == 200
    # push-update: a ticket, the feed, and the WebSocket itself
    ticket = call("POST", "/ws/ticket").json()["ticket"]
    assert call("GET", "/changes?since=0").status_code == 200
    with connect(f"ws://127.0.0.1:{stack.gateway_port}/ws?ticket={ticket}&since=0") as socket:
        first = json.loads(socket.recv(timeout=30))
    assert first["type"] == "task.created"
    # on-reminder: the reminder fires by email and by webhook
    def notified() -> None:
        assert hooks and [m for m in inbox.messages if address in m.rcpt_tos]

    eventually(notified, timeout=90)
    assert json.loads(hooks[0])["task_id"] == task["id"]
    # update-task again, then on-task-event makes the next instance, and audit-sink records it all
    assert call("POST", f"/tasks/{task['id']}/complete").status_code == 200

    def next_instance() -> dict[str, Any]:
        items = call("GET", "/tasks?status=open").json()["items"]
        mine = [t for t in items if t["series"] and t["series"]["id"] == task["series"]["id"]]
        assert mine
        return mine[0]

    assert eventually(next_instance)["series"]["occurrence"] == 2

    def audited() -> list[str]:
        # A task the audit consumer has not seen yet has no history (404, no items).
        actions = [e["action"] for e in call("GET", f"/tasks/{task['id']}/history").json().get("items", [])]
        assert "task.completed" in actions
        return actions

    # (reminders travel on their own topic: their entries may come before the task's)
    assert {"task.created", "reminder.scheduled", "reminder.triggered"} <= set(eventually(audited))
    auditor = mint(Settings(jwt_secret=SECRET), "closure-auditor", ["auditor"])
    verified = httpx.get(f"http://127.0.0.1:{stack.gateway_port}/audit/verify",
                         headers={"Authorization": f"Bearer {auditor}"}, timeout=30)
    assert verified.status_code == 200 and verified.json()["ok"], verified.text

    assert [a for a in answers if a[1] >= 500] == []
    text = stack.log_path.read_text()
    assert "ModuleNotFoundError" not in text and "ImportError" not in text  # in no process, ever
    # Nothing crashed while this test drove the functions (other tests' outages log their own failures).
    during = stack.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert [line for line in during.splitlines() if '"unhandled error"' in line] == []


def _environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")  # noqa: SIM115
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)
