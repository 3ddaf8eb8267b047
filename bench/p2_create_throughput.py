"""P2 create-task throughput and latency at 8 and 32 concurrent clients on PostgreSQL (JWT, validation,
insert + outbox, commit), against pgbench running an INSERT+COMMIT transaction of the same rows at the same
concurrency; alternating runs. M1: the peak RSS (VmHWM) of the create-task process tree under that load.

create-task runs as on the real stack: its process (app_command/app_env, secrets from its daprd's store)
next to its daprd, Kafka up, so the outbox relay publishes while it is loaded. The clients are wrk
connections (C, like pgbench), each with its own user's JWT, calling the function's port directly (not the
gateway). wrk reports latency percentiles, not every sample: the plot and p50/p99 of create-task are read
from the percentiles of the runs pooled.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from todo_dev.stack import Stack

from .common import (
    Row,
    cpu_seconds,
    engines,
    ensure_wrk,
    make_stack,
    median,
    pct,
    pg_bin,
    psql,
    token,
    tree_pids,
    vm_hwm_kib,
)

FUNCTION = "create-task"
WRK_SCRIPT = Path(__file__).with_name("p2_wrk.lua")
BODY = {"title": "Benchmark task", "description": "A task created by the P2 benchmark, of a typical size. " * 3,
        "priority": "high", "tags": ["bench", "load"], "due_at": "2030-01-01T09:00:00Z", "timezone": "Europe/Paris"}

# Its outbox rows are born published: pending, they were the relay's to read while create-task ran next
# (not CloudEvents, each became a dead letter, ~14,000 a run, eating create-task's CPU in every P2 so far).
PGBENCH_SCRIPT = """\
BEGIN;
INSERT INTO tasks (user_id, title, description, status, priority, tags, due_at, timezone, recurrence, reminders,
  created_at, updated_at, version) VALUES ('pgbench-' || :client_id, 'Benchmark task',
  repeat('A task created by the P2 benchmark, of a typical size. ', 3), 'open', 3, '["bench", "load"]',
  '2030-01-01T09:00:00Z', 'Europe/Paris', NULL, '[]', now(), now(), 1);
INSERT INTO task_tags (task_id, tag, user_id) VALUES (lastval(), 'bench', 'pgbench-' || :client_id),
  (lastval(), 'load', 'pgbench-' || :client_id);
INSERT INTO outbox (event_id, topic, partition_key, payload, created_at, published_at) VALUES
  (md5(random()::text || clock_timestamp()::text), 'task-events', 'pgbench-' || :client_id,
   repeat('x', 900), now(), now()),
  (md5(random()::text || clock_timestamp()::text), 'task-updates', 'pgbench-' || :client_id,
   repeat('x', 900), now(), now());
COMMIT;
"""


# The relay's statements (its advisory lock, the pending batch, the marks, and the BEGIN and COMMIT pg8000
# wraps them in): amortised over a batch, not a request's own round trips. A create sends no BEGIN or
# COMMIT of its own: it is one statement outside a transaction block (todo.adapters.drafts, and
# tests/integration/test_one_statement_create.py).
RELAY_STATEMENTS = ("pg_advisory", "published_at IS NULL", "UPDATE outbox SET published_at")
RELAY_ONLY = ("begin transaction", "commit")


def _statements(stack: Stack) -> dict[str, int]:
    """Calls per statement text so far by role todo on database todo (pg_stat_statements)."""
    out = psql(stack, "SELECT s.calls, regexp_replace(s.query, '\\s+', ' ', 'g') FROM pg_stat_statements s "
                      "JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = 'todo' "
                      "AND s.query NOT LIKE '%pg_stat_statements%'")
    calls: dict[str, int] = {}
    for line in out.splitlines():
        count, _, query = line.partition("|")
        calls[query] = calls.get(query, 0) + int(count)
    return calls


def _round_trips(before: dict[str, int], after: dict[str, int]) -> tuple[int, int, int, dict[str, int]]:
    """Statements sent between two snapshots: (creates, all, the requests' own, the requests' own by text).
    The creates are the task INSERTs PostgreSQL ran: exact, where wrk's rate times its duration is not."""
    sent = {q: n - before.get(q, 0) for q, n in after.items() if n > before.get(q, 0)}
    own = {q: n for q, n in sent.items()
           if not any(mark in q for mark in RELAY_STATEMENTS) and q.strip().lower() not in RELAY_ONLY}
    creates = sum(n for q, n in own.items() if "INSERT INTO tasks (" in q)  # alone, or in a CTE with its tags
    return creates, sum(sent.values()), sum(own.values()), own


def _load(url: str, clients: int, seconds: int) -> tuple[float, list[float], int]:
    """``clients`` closed-loop connections for ``seconds`` through wrk: (201s per second, latency
    percentiles p1…p99.9 in ms, other answers and socket errors).

    wrk, not a Python client: the Python client needed a core of its own on this 2-core machine,
    so the function was measured with half the CPU pgbench (C) left to PostgreSQL.
    """
    tokens = [token(f"bench-p2-{i}") for i in range(clients)]
    out = subprocess.run(
        [ensure_wrk(), "-t", str(clients), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "30s",
         "-s", str(WRK_SCRIPT), url, "--", json.dumps(BODY), *tokens],
        check=True, capture_output=True, text=True).stdout
    values = dict(line.split(" ", 1) for line in out.splitlines()
                  if re.match(r"^(created|failed|errors|duration_us|p[\d.]+) ", line))
    created = int(values["created"])
    percentiles = [int(v) / 1000 for k, v in values.items() if k.startswith("p")]
    return created / (int(values["duration_us"]) / 1e6), percentiles, int(values["failed"]) + int(values["errors"])


def _pgbench(stack: Stack, clients: int, seconds: int, work: Path) -> tuple[float, list[float]]:
    script = work / "insert.sql"
    script.write_text(PGBENCH_SCRIPT)
    logs = work / f"log-{clients}-{time.monotonic_ns()}"
    logs.mkdir()
    out = subprocess.run([pg_bin("pgbench"), "-n", "-M", "prepared", "-h", "127.0.0.1", "-p", str(stack.pg_port),
                          "-U", "todo", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", str(script),
                          "-l", "--log-prefix", str(logs / "tx"), "todo"],
                         check=True, capture_output=True, text=True).stdout
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    assert found, out
    latencies = [int(line.split()[2]) / 1000 for f in logs.iterdir() for line in f.read_text().splitlines()]
    return float(found.group(1)), latencies


def run(quick: bool = False) -> list[Row]:
    seconds = 3 if quick else 10
    repeats = 5
    stack = make_stack("p2", (FUNCTION,))
    rows: list[Row] = []
    stack.statement_stats = True  # the round trips of a create, counted by pg_stat_statements
    with engines(stack, kafka=True), tempfile.TemporaryDirectory(prefix="bench-p2-") as tmp:
        stack.start_function(FUNCTION)
        url = f"http://127.0.0.1:{stack.ports(FUNCTION).app}/tasks"
        _load(url, 8, 1)  # warm-up: connections, JIT-less caches, first outbox relay
        pid = stack.children[FUNCTION].proc.pid
        for clients in (8, 32):
            app_tps, app_lat, base_tps, base_lat, errors = [], [], [], [], 0
            cpu_ms, trips, own_trips = [], [], []
            own_by_text: dict[str, int] = {}
            for _ in range(repeats):  # alternate: app, pgbench, app, pgbench…
                pids, sent_before = tree_pids(pid), _statements(stack)
                cpu_before, started = cpu_seconds(pids), time.monotonic()
                tps, lat, err = _load(url, clients, seconds)
                cpu_used = cpu_seconds(pids) - cpu_before  # all the work of this run (the relay's publish too)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started - seconds)))  # the relay's last drain
                creates, every, own, by_text = _round_trips(sent_before, _statements(stack))
                creates = max(creates, 1)
                cpu_ms.append(cpu_used / creates * 1000)
                trips.append(every / creates)
                own_trips.append(own / creates)
                for query, count in by_text.items():
                    own_by_text[query] = own_by_text.get(query, 0) + count
                app_tps.append(tps)
                app_lat.extend(lat)
                errors += err
                tps, lat = _pgbench(stack, clients, seconds, Path(tmp))
                base_tps.append(tps)
                base_lat.extend(lat)
            share = median(app_tps) / median(base_tps)
            rows.append(Row(
                id="P2", what=f"create-task, {clients} clients",
                measured={"tps": round(median(app_tps), 1), "p50_ms": round(pct(app_lat, 50), 1),
                          "p99_ms": round(pct(app_lat, 99), 1), "errors": errors,
                          "runs_tps": [round(t, 1) for t in app_tps]},
                baseline={"what": "pgbench INSERT+COMMIT", "tps": round(median(base_tps), 1),
                          "p50_ms": round(pct(base_lat, 50), 2), "p99_ms": round(pct(base_lat, 99), 2),
                          "runs_tps": [round(t, 1) for t in base_tps]},
                ratio=round(share, 3), ratio_text=f"{share:.1%} of pgbench tps", target="≥ 33%", met=share >= 0.33,
                samples={f"create-task c={clients}": app_lat, f"pgbench c={clients}": base_lat}))
            total_own = sum(own_by_text.values())
            rows.append(Row(
                id="P2", what=f"create-task, {clients} clients: Python CPU per create",
                measured={"cpu_ms_per_create": round(median(cpu_ms), 2), "runs_ms": [round(c, 2) for c in cpu_ms]},
                target="≤ 1.5 ms", met=median(cpu_ms) <= 1.5,
                notes=["user + system CPU of the function's process tree during a run ÷ the run's creates "
                       "(its outbox relay's publishing included; daprd and PostgreSQL not)"]))
            rows.append(Row(
                id="P2", what=f"create-task, {clients} clients: database statements per create",
                measured={"request_statements": round(median(own_trips), 2),
                          "with_relay": round(median(trips), 2),
                          "statements": {q[:90]: round(n / total_own * median(own_trips), 2)
                                         for q, n in sorted(own_by_text.items(), key=lambda i: -i[1])}},
                target="≤ 2 round trips", met=median(own_trips) <= 2.0,
                notes=["statements sent by role todo during a run (pg_stat_statements) ÷ the task INSERTs; a "
                       "create is one prepared statement (one round trip: Bind, Execute, Sync) and the block of "
                       "64 task ids it draws from (1/64). No pool pre-ping any more: a closed connection is "
                       "seen on its socket at checkout. 'with_relay' adds the relay's lock, batch reads, marks "
                       "and their BEGIN/COMMIT"]))
            print(f"P2 c={clients}: {median(app_tps):.0f} tps (p50 {pct(app_lat, 50):.1f} ms, p99 "
                  f"{pct(app_lat, 99):.1f} ms) vs pgbench {median(base_tps):.0f} tps = {share:.1%}; "
                  f"{median(cpu_ms):.2f} ms CPU and {median(own_trips):.2f} statements per create", flush=True)
        per_pid = {p: vm_hwm_kib(p) for p in tree_pids(pid)}
        peak = max(per_pid.values()) / 1024
        rows.append(Row(
            id="M1", what=f"peak RSS {FUNCTION} under P2 load",
            measured={"max_vmhwm_mib": round(peak, 1), "tree_sum_mib": round(sum(per_pid.values()) / 1024, 1),
                      "processes": len(per_pid)},
            target="≤ 150 MiB", met=peak <= 150,
            notes=["VmHWM of each process of the function's tree; the largest is compared with the target"]))
        print(f"M1 {FUNCTION}: VmHWM {per_pid} KiB", flush=True)
    return rows
