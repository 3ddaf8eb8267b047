"""The embedded default as a person runs it: `todo serve` in its own process, over real HTTP."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from todo_dev import ports
from todo_dev.ready import wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
TODO = str(Path(sys.executable).with_name("todo"))


_next_port = iter(range(10, 30))


def free_port() -> int:
    """A port of this run's test block (todo_dev.ports), not one of the outgoing range."""
    return ports.test_port(next(_next_port))


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.env = {**os.environ, "TODO_DATA_DIR": str(data_dir), "TODO_OUTBOX_SWEEP_SECONDS": "0.5"}
        for name in ("TODO_DATABASE_URL", "TODO_JWT_SECRET", "TODO_JWT_JWKS_URL", "TODO_EVENTS"):
            self.env.pop(name, None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Its logs go to a file: a pipe nobody reads fills up, and the server then blocks on its next line.
        self.log_path = data_dir.parent / f"todo-serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def todo(self, *args: str) -> str:
        return subprocess.run([TODO, *args], env=self.env, check=True, capture_output=True, text=True).stdout.strip()

    def start(self) -> None:
        self.todo("migrate")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([TODO, "serve", "--port", str(self.port)], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_until_ready(f"{self.url}/healthz", timeout=30, process=self.proc, what="todo serve")

    def interrupt(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(timeout=20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data")
    yield server
    server.kill()


@pytest.mark.e2e
def test_embedded_server_serves_persists_and_stops_cleanly_on_ctrl_c(server: Server) -> None:
    server.start()
    token = server.todo("token", "--sub", "alice", "--ttl", "10m")
    auth = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{server.url}/tasks", json={"title": "survive a restart", "tags": ["e2e"]}, headers=auth)
    assert created.status_code == 201
    assert httpx.get(f"{server.url}/tasks", headers=auth).json()["items"][0]["title"] == "survive a restart"
    assert httpx.get(f"{server.url}/tasks").status_code == 401
    assert httpx.post(f"{server.url}/tasks", content=b"{", headers={**auth, "Content-Type": "application/json"}
                      ).status_code == 400
    assert httpx.get(f"{server.url}/openapi.json").json()["openapi"] == "3.1.0"
    assert server.interrupt() == 0

    database = Path(server.env["TODO_DATA_DIR"]) / "todo.sqlite3"
    with sqlite3.connect(database) as conn:
        (pending,) = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
        (total,) = conn.execute("SELECT count(*) FROM outbox WHERE topic = 'task-events'").fetchone()
    assert (total, pending) == (1, 0)  # published in-process before the process went away

    server.start()  # same data dir: the task and the token's key are still there
    assert server.todo("token", "--sub", "alice") != ""
    listed = httpx.get(f"{server.url}/tasks", headers=auth).json()["items"]
    assert [t["title"] for t in listed] == ["survive a restart"]
    assert server.interrupt() == 0


@pytest.mark.e2e
def test_token_command_mints_tokens_with_roles_and_ttl(server: Server) -> None:
    import jwt

    token = server.todo("token", "--sub", "carol", "--roles", "admin,auditor", "--ttl", "2h")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "carol" and set(claims["roles"]) == {"admin", "auditor"}
    assert 7100 <= claims["exp"] - claims["iat"] <= 7200
    failed = subprocess.run([TODO, "token", "--sub", "x", "--roles", "root"], env=server.env, capture_output=True)
    assert failed.returncode == 2 and b"unknown roles" in failed.stderr
