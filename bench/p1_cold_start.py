"""P1 cold start: process exec → first successful real request (the database reached), per function,
against a hello-world functions-framework function, alternating runs.

Each function is spawned exactly as the local stack spawns it (``Stack.app_command``), but with
``Stack.env_for`` instead of ``Stack.app_env``: the database URL and JWT secret come straight from the
environment (no ``TODO_SECRET_STORE``), so no daprd is needed and none is started.

The sources are byte-compiled first, as the image build does (``compileall``): with
``PYTHONDONTWRITEBYTECODE`` set, every start would otherwise compile the shared library again, which
no deployed cold start does.
"""

from __future__ import annotations

import compileall
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import httpx

from todo.routes import WS_FUNCTION
from todo_dev import ports
from todo_dev.ready import wait_until_ready
from todo_dev.stack import Stack, functions_present

from .common import BENCH, WORK, Row, engines, headers, make_stack, median, psql

PORT = ports.bench_port(0)
HELLO = [sys.executable, "-m", "functions_framework", "--target", "hello", "--source",
         str(BENCH / "hello" / "main.py"), "--asgi", "--host", "127.0.0.1", "--port", str(PORT)]


def _probe(stack: Stack, function: str, event: dict[str, object] | None,
           port: int = PORT) -> Callable[[httpx.Client], bool]:
    """A request that only succeeds once the function has reached the database."""
    base = f"http://127.0.0.1:{port}"
    auth = headers("bench-p1")

    def ok(response: httpx.Response) -> bool:
        return 200 <= response.status_code < 300

    if function == "create-task":
        return lambda c: ok(c.post(f"{base}/tasks", headers=auth, json={"title": "cold"}))
    if function == "query-tasks":
        return lambda c: ok(c.get(f"{base}/tasks", headers=auth))
    if function == "update-task":
        task_id = psql(stack, "SELECT max(id) FROM tasks WHERE user_id = 'bench-p1'").strip()
        return lambda c: ok(c.patch(f"{base}/tasks/{task_id}", headers={
            **auth, "Content-Type": "application/merge-patch+json"}, json={"title": "cold"}))
    if function == WS_FUNCTION:
        return lambda c: ok(c.get(f"{base}/changes", headers=auth, params={"since": 0}))
    if function == "on-reminder":
        return lambda c: ok(c.post(f"{base}/reminder-scan"))
    assert event is not None
    # a real task event taken from the outbox, re-sent with a fresh id each time so it is processed

    def send(c: httpx.Client) -> bool:
        return ok(c.post(f"{base}/events", json={**event, "id": str(uuid.uuid4())},
                         headers={"Content-Type": "application/cloudevents+json"}))
    return send


def _hello_probe(c: httpx.Client) -> bool:
    return c.get(f"http://127.0.0.1:{PORT}/").status_code == 200


def cold_start(argv: list[str], env: dict[str, str], probe: Callable[[httpx.Client], bool],
               timeout: float = 60.0, beside: tuple[list[str], dict[str, str]] | None = None) -> float:
    """Seconds from exec to the first request ``probe`` calls successful; ``beside`` (a sidecar's argv
    and environment) is started at the same instant and stopped with the function."""
    with httpx.Client(timeout=5.0) as client:
        start = time.perf_counter()
        log = (WORK / "p1-last.log").open("wb")
        procs = [subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(BENCH.parent))
                 for command, environment in ([(argv, env)] + ([beside] if beside else []))]
        try:
            wait_until_ready(lambda: probe(client), timeout=timeout, interval=0.01, process=procs[0],
                             what=str(argv))
            return time.perf_counter() - start
        finally:
            log.close()
            for proc in procs:
                _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


SIDECAR_FUNCTION = "create-task"


def _with_sidecar(repeats: int) -> Row:
    """Exec of create-task and its daprd together → the first created task, as a Knative pod starts: the
    app reads its secrets from the sidecar's store (``Stack.app_env``), so it cannot answer before daprd."""
    stack = make_stack("p1-sidecar", (SIDECAR_FUNCTION,))
    with engines(stack, kafka=True):  # daprd's pub/sub component connects to Kafka at start
        ports = stack.ports(SIDECAR_FUNCTION)
        launch = stack.launcher.function(SIDECAR_FUNCTION, ports.app, stack.app_env(SIDECAR_FUNCTION, ports))
        sidecar = stack.sidecar_command(SIDECAR_FUNCTION, ports)
        probe = _probe(stack, SIDECAR_FUNCTION, None, port=ports.app)
        env_hello = {k: v for k, v in os.environ.items() if not k.startswith(("TODO_", "DAPR_"))}
        times, base = [], []
        for _ in range(repeats):
            times.append(cold_start(launch.argv, launch.env, probe, beside=sidecar))
            base.append(cold_start(HELLO, env_hello, _hello_probe))
    ratio = median(times) / median(base)
    print(f"P1 {SIDECAR_FUNCTION} with daprd: {median(times):.3f} s vs hello {median(base):.3f} s = {ratio:.2f}x",
          flush=True)
    return Row(
        id="P1", what=f"cold start {SIDECAR_FUNCTION} with its daprd",
        measured={"median_s": round(median(times), 3), "runs_s": [round(t, 3) for t in times]},
        baseline={"what": "hello-world functions-framework --asgi, no sidecar", "median_s": round(median(base), 3),
                  "runs_s": [round(t, 3) for t in base]},
        ratio=round(ratio, 2), ratio_text=f"{ratio:.2f}x hello", target="— (recorded)",
        samples={f"{SIDECAR_FUNCTION} + daprd": [t * 1000 for t in times]},
        notes=["both processes exec'd at once; secrets from daprd's store, Kafka up; the clock stops at the "
               "first 201 of POST /tasks"])


def run(quick: bool = False) -> list[Row]:
    repeats = 5
    for sources in (BENCH.parent / "shared" / "todo", BENCH.parent / "functions", BENCH / "hello"):
        compileall.compile_dir(sources, quiet=1)
    stack = make_stack("p1")
    rows = []
    with engines(stack, kafka=False):
        env_hello = {k: v for k, v in os.environ.items() if not k.startswith(("TODO_", "DAPR_"))}
        # create-task first: it leaves the task update-task patches and the event the consumers get
        order = sorted(functions_present(), key=lambda f: f != "create-task")
        event: dict[str, object] | None = None
        for function in order:
            if function in ("on-task-event", "audit-sink") and event is None:
                raw = psql(stack, "SELECT payload FROM outbox WHERE topic = 'task-events' ORDER BY id LIMIT 1")
                event = json.loads(raw)
            env = stack.env_for(function)
            env["PORT"] = str(PORT)
            argv = stack.app_command(function, PORT)
            probe = _probe(stack, function, event)
            times: list[float] = []
            base: list[float] = []
            for _ in range(repeats):  # alternate: function, hello, function, hello…
                times.append(cold_start(argv, env, probe))
                base.append(cold_start(HELLO, env_hello, _hello_probe))
            ratio = median(times) / median(base)
            rows.append(Row(
                id="P1", what=f"cold start {function}",
                measured={"median_s": round(median(times), 3), "runs_s": [round(t, 3) for t in times]},
                baseline={"what": "hello-world functions-framework --asgi", "median_s": round(median(base), 3),
                          "runs_s": [round(t, 3) for t in base]},
                ratio=round(ratio, 2), ratio_text=f"{ratio:.2f}x hello", target="≤ 1.5x", met=ratio <= 1.5,
                samples={function: [t * 1000 for t in times], f"hello ({function})": [t * 1000 for t in base]},
                notes=["env_for (no TODO_SECRET_STORE, no daprd): secrets from the environment"]))
            print(f"P1 {function}: {median(times):.3f} s vs hello {median(base):.3f} s = {ratio:.2f}x", flush=True)
    rows.append(_with_sidecar(repeats))
    return rows
