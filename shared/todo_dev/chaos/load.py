"""The load: many users, each writing at its own pace through the gateway with a WebSocket open.

Light on purpose (one asyncio loop, no threads): the machine that runs it also runs the whole stack.
Each user keeps a small model of its tasks, from its answers and from its socket (the next instances
of its series arrive there), and picks an action that makes sense for it. Deletes prefer closed
instances of a series and their successors: the sequence that once made a series advance twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import connect

from todo.edge.auth import mint
from todo.proxy import IDEMPOTENT, NO_ANSWER
from todo.routes import match
from todo.settings import Settings

MAX_TASKS = 40  # per user: a longer run deletes more rather than growing every list it reads


@dataclass(frozen=True)
class Plan:
    users: int = 20
    writes_per_second: float = 40.0  # all users together
    seconds: float = 180.0
    seed: int = 11


@dataclass
class Model:
    """What one user believes its tasks are: id → the task as last answered or pushed."""

    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)

    def apply(self, message: dict[str, Any]) -> None:
        task = message.get("task")
        if not isinstance(task, dict) or "id" not in task:
            return
        if message.get("type") == "task.deleted":
            self.tasks.pop(task["id"], None)
        elif task["id"] not in self.tasks or task.get("version", 0) >= self.tasks[task["id"]].get("version", 0):
            self.tasks[task["id"]] = task


class Load:
    def __init__(self, base_url: str, secret: str, plan: Plan, prefix: str) -> None:
        self.base_url = base_url
        self.ws_url = base_url.replace("http", "ws", 1) + "/ws"
        self.plan = plan
        self.users = [f"{prefix}-{i:02d}" for i in range(plan.users)]
        self.tokens = {u: mint(Settings(jwt_secret=secret), u, ttl_seconds=6 * 3600) for u in self.users}
        self.models = {u: Model() for u in self.users}
        self.last_seq = {u: 0 for u in self.users}
        self.calls: list[dict[str, Any]] = []
        self.sockets: list[dict[str, Any]] = []
        self.errors: list[str] = []  # the load's own surprises (reported, never hidden)
        self.t0 = time.monotonic()
        self.busy: Callable[[], bool] = lambda: False
        self.listening = True

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    async def run(self, client: httpx.AsyncClient, busy: Callable[[], bool] = lambda: False) -> None:
        """Write for ``plan.seconds`` and for as long as ``busy()`` holds (the faults are not all undone):
        every fault happens under load. The sockets stay open until ``close_sockets``."""
        self.busy = busy
        self._socket_tasks = [asyncio.create_task(self._listen(client, u)) for u in self.users]
        await asyncio.gather(*(self._write(client, u, i) for i, u in enumerate(self.users)))

    async def close_sockets(self) -> None:
        self.listening = False
        for task in self._socket_tasks:
            task.cancel()
        await asyncio.gather(*self._socket_tasks, return_exceptions=True)

    # -- requests -----------------------------------------------------------------------------------

    async def call(self, client: httpx.AsyncClient, user: str, action: str, method: str, path: str,
                   task_id: int | None = None, **kwargs: Any) -> httpx.Response | None:
        route, _ = match(method, path.split("?")[0])
        record: dict[str, Any] = {"user": user, "function": route.function, "action": action, "status": 0,
                                  "t": self.now(), "task_id": task_id, "version": None}
        self.calls.append(record)
        headers = {"Authorization": f"Bearer {self.tokens[user]}", **kwargs.pop("headers", {})}
        try:
            try:
                answer = await client.request(method, path, headers=headers, **kwargs)
            except NO_ANSWER as exc:
                if method not in IDEMPOTENT:
                    raise
                # What a browser does when a kept-alive connection dies before any answer: send it once
                # more. Counted (the table's "resent"), so a server that drops connections still shows.
                record["resent"] = type(exc).__name__
                answer = await client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            record |= {"error": type(exc).__name__, "done": self.now()}
            return None
        record |= {"status": answer.status_code, "done": self.now()}
        if answer.status_code >= 500:
            record["error"] = answer.text[:200]
        return answer

    async def _write(self, client: httpx.AsyncClient, user: str, index: int) -> None:
        period = self.plan.users / self.plan.writes_per_second
        rng = random.Random(self.plan.seed * 1000 + index)  # noqa: S311 (a reproducible load, no secret)
        await asyncio.sleep(rng.uniform(0, period))
        end = self.plan.seconds
        n = 0
        while self.now() < end or self.busy():
            started = time.monotonic()
            try:
                await self._one_write(client, user, rng)
            except Exception as exc:  # an answer of a shape the load did not expect: keep it, go on
                self.errors.append(f"{user}: {type(exc).__name__}: {exc}"[:300])
            n += 1
            if n % 5 == 0:  # a read now and then: query-tasks' availability counts too
                await self.call(client, user, "list", "GET", "/tasks?limit=20")
            await asyncio.sleep(max(0.0, period * rng.uniform(0.7, 1.3) - (time.monotonic() - started)))

    async def _one_write(self, client: httpx.AsyncClient, user: str, rng: random.Random) -> None:
        tasks = self.models[user].tasks
        open_ = [t for t in tasks.values() if t.get("status") == "open"]
        closed_instances = [t for t in tasks.values() if t.get("series") and t.get("status") != "open"]
        later_instances = [t for t in open_ if t.get("series") and t["series"]["occurrence"] > 1]
        roll = rng.random()
        if len(tasks) >= MAX_TASKS or (roll < 0.14 and tasks):
            pool = closed_instances or later_instances or list(tasks.values())
            if closed_instances and later_instances and rng.random() < 0.5:
                pool = later_instances
            await self._delete(client, user, rng.choice(pool))
        elif roll < 0.38 or not tasks:
            await self._create(client, user, rng, recurring=rng.random() < 0.3)
        elif roll < 0.63:
            task = rng.choice(list(tasks.values()))
            await self._answered(client, user, "patch", "PATCH", f"/tasks/{task['id']}",
                                 content=json.dumps({"title": f"edited {rng.randrange(10**6)}"}),
                                 headers={"Content-Type": "application/merge-patch+json"})
        elif roll < 0.88 and open_:
            recurring = [t for t in open_ if t.get("series")]
            task = rng.choice(recurring if recurring and rng.random() < 0.6 else open_)
            await self._answered(client, user, "complete", "POST", f"/tasks/{task['id']}/complete")
        elif open_:
            recurring = [t for t in open_ if t.get("series")]
            if recurring:
                await self._answered(client, user, "skip", "POST", f"/tasks/{rng.choice(recurring)['id']}/skip")
            else:
                await self._create(client, user, rng, recurring=True)
        else:
            await self._create(client, user, rng, recurring=False)

    async def _create(self, client: httpx.AsyncClient, user: str, rng: random.Random, recurring: bool) -> None:
        body: dict[str, Any] = {"title": f"chaos {rng.randrange(10**6)}", "tags": [rng.choice(("a", "b", "c"))]}
        if recurring:
            due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
            body |= {"due_at": due.isoformat(), "recurrence": {"rrule": "FREQ=DAILY", "anchor": "schedule"}}
        await self._answered(client, user, "create_recurring" if recurring else "create", "POST", "/tasks",
                             json=body)

    async def _delete(self, client: httpx.AsyncClient, user: str, task: dict[str, Any]) -> None:
        answer = await self.call(client, user, "delete", "DELETE", f"/tasks/{task['id']}", task_id=task["id"])
        if answer is not None and (answer.status_code < 300 or answer.status_code == 404):
            self.models[user].tasks.pop(task["id"], None)

    async def _answered(self, client: httpx.AsyncClient, user: str, action: str, method: str, path: str,
                        **kwargs: Any) -> None:
        answer = await self.call(client, user, action, method, path, **kwargs)
        if answer is None:
            return
        if answer.status_code == 404 and "/tasks/" in path:
            self.models[user].tasks.pop(int(path.split("/")[2]), None)
        if 200 <= answer.status_code < 300:
            task = answer.json()
            record = next(c for c in reversed(self.calls) if c["user"] == user and c["action"] == action)
            record.update(task_id=task["id"], version=task["version"])
            self.models[user].apply({"type": "answer", "task": task})

    # -- sockets ------------------------------------------------------------------------------------

    async def _listen(self, client: httpx.AsyncClient, user: str) -> None:
        """One socket at a time per user, reopened from the last seq seen whenever it drops (push-update
        killed, the gateway restarted): that is what a client does."""
        n = 0
        while self.listening:
            answer = await self.call(client, user, "ticket", "POST", "/ws/ticket")
            if answer is None or answer.status_code >= 300:
                await asyncio.sleep(0.5)
                continue
            ticket = answer.json()["ticket"]
            socket: dict[str, Any] = {"user": user, "n": n, "seqs": [], "opened": self.now()}
            n += 1
            try:
                async with connect(f"{self.ws_url}?ticket={ticket}&since={self.last_seq[user]}",
                                   open_timeout=10, ping_interval=None) as ws:
                    self.sockets.append(socket)
                    async for raw in ws:
                        message = json.loads(raw)
                        seq = int(message["seq"])
                        socket["seqs"].append(seq)
                        self.last_seq[user] = max(self.last_seq[user], seq)
                        self.models[user].apply(message)
            except Exception as exc:  # refused, dropped (ConnectionClosed, InvalidStatus, OSError …): reconnect
                socket["closed_by"] = type(exc).__name__
            socket["closed"] = self.now()
            if self.listening:
                await asyncio.sleep(0.3)

