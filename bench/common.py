"""What every benchmark shares: the stack on its own ports, tokens, statistics, result rows."""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from todo.edge.auth import mint
from todo.settings import Settings
from todo_dev import ports
from todo_dev.ready import wait_until_ready
from todo_dev.stack import ROOT, Stack

BENCH = Path(__file__).resolve().parent
WORK = Path(os.environ.get("BENCH_WORK", BENCH / ".work"))
RESULTS = BENCH / "results"
SECRET = "bench-secret-" + "b" * 40  # a throw-away HS256 key for the bench stack only



@dataclass
class Row:
    """One benchmark's outcome: what was measured, its baseline, the ratio and whether the target holds."""

    id: str
    what: str
    measured: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    ratio_text: str = ""
    target: str = ""
    met: bool | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)  # latency distributions for the plot (ms)
    notes: list[str] = field(default_factory=list)


def token(user: str = "bench", ttl_seconds: int = 12 * 3600) -> str:
    return mint(Settings(jwt_secret=SECRET), user, ttl_seconds=ttl_seconds)


def headers(user: str = "bench") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


def make_stack(name: str, functions: tuple[str, ...] | None = None, fresh: bool = True) -> Stack:
    """A stack on the bench ports in its own directory (``bench/.work/<name>``): ``fresh`` wipes it first, so
    no benchmark sees another's rows or Kafka records (P4 keeps its generated tasks between runs)."""
    # The functions' own spans are not exported unless a row asks (T1 compares both): the other rows keep
    # measuring what they measured before tracing existed.
    kwargs: dict[str, Any] = {"export_traces": False}
    if functions is not None:
        kwargs["functions"] = functions
    folder = WORK / name
    if fresh and folder.exists():
        shutil.rmtree(folder)
    # Own ports (todo_dev.ports.bench): never the tests' nor `make run`'s.
    return Stack.on(ports.bench(), folder, SECRET, **kwargs)


def start_postgres(stack: Stack) -> None:
    stack._script("postgres.sh", "start")


def stop_postgres(stack: Stack) -> None:
    stack._script("postgres.sh", "stop")


@contextmanager
def engines(stack: Stack, kafka: bool) -> Iterator[Stack]:
    """PostgreSQL (and Kafka when asked) on the bench ports, migrated; stopped on exit."""
    for port in (stack.pg_port, stack.kafka_port, stack.base_port):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(f"port {port} is in use: is another benchmark running? (one at a time)")
    try:
        if kafka:
            stack.start_engines()
        else:
            start_postgres(stack)
        stack.migrate()
        yield stack
    finally:
        stack.down(engines=False)
        if kafka:
            stack.stop_kafka()
            stack._script("jaeger.sh", "stop")  # start_engines started it too
        stop_postgres(stack)


def psql(stack: Stack, sql: str, *args: str) -> str:
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(stack.pg_port),
                          "-U", "todo", "-d", "todo", "-At", *args, "-c", sql],
                         check=True, capture_output=True, text=True, env={**os.environ, "PATH": pg_path()})
    return out.stdout


def ensure_wrk() -> str:
    """wrk (HTTP load generator, C) from the distribution's packages, installed on first use."""
    found = shutil.which("wrk")
    if found is None:
        print("bench: installing wrk (apt-get)", flush=True)
        if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is needed for P2: apt-get install wrk")
    return found


def pg_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"{name} not found under /usr/lib/postgresql/*/bin")
    return str(found[-1])


def pg_path() -> str:
    return f"{Path(pg_bin('psql')).parent}:{os.environ.get('PATH', '')}"


def wait_ok(url: str, timeout: float = 60.0) -> None:
    wait_until_ready(url, timeout=timeout, interval=0.05)


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                continue
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (all their threads), from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / ticks


def _role(pid: int) -> str:
    """A short name for a process of the host: the function it serves, daprd of which app, kafka, …"""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return "kernel"
    for flag, prefix in (("--target", ""), ("--app-id", "daprd ")):
        if flag in words[:-1]:
            return prefix + words[words.index(flag) + 1].replace("_", "-")
    command = Path(words[0]).name
    if command == "java":
        return "kafka" if any("kafka" in w for w in words) else "java"
    if command.startswith("postgres"):
        return "postgres"
    if "bench" in words:
        return "bench client"
    return command


def cpu_by_role() -> dict[str, float]:
    """CPU seconds (user + system) each kind of process of the host has used so far (:func:`_role`)."""
    found: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            found[_role(pid)] = found.get(_role(pid), 0.0) + cpu_seconds([pid])
    return found


def vm_hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return {"nproc": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kib / 1024 / 1024, 1),
            "root": str(ROOT)}
