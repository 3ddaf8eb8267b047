"""The faults of a chaos run, on a schedule, made and undone on a running ``Stack``.

Kinds (``Fault.kind``):

* ``kafka``: the broker stopped, started again ``down`` seconds later;
* ``kill``: a function's process SIGKILLed (``Stack.kill``: its whole process group), restarted;
* ``daprd``: a function's sidecar SIGKILLed, restarted;
* ``restart``: PostgreSQL stopped (fast shutdown: connections cut) and started again;
* ``relay``: create-task SIGKILLed while its outbox has rows not yet marked published, i.e. while its
  relay is draining: a kill that lands between the publish and the mark leaves rows that the next
  sweep publishes again (the same ids: on Kafka twice, counted as ``republished``).

One thread runs them in order, each at its time or as soon as the one before is undone: faults never
overlap, so each window in the report is the effect of one fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from todo.routes import SUBSCRIPTIONS

from ..stack import Stack

RELAY = "create-task"  # the busiest writer: its relay is almost always draining under load


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    down: float  # seconds between the fault and its repair


def full(functions: tuple[str, ...]) -> list[Fault]:
    """``make chaos``: every fault kind, every consumer killed, every sidecar killed, Kafka twice."""
    consumers = tuple(dict.fromkeys(s.function for s in SUBSCRIPTIONS if s.function in functions))
    plan = [Fault("relay", RELAY, 1.0), Fault("kafka", "kafka", 15.0)]
    plan += [Fault("kill", f, 8.0 if f in ("audit-sink", "on-task-event") else 4.0) for f in consumers]
    plan += [Fault("restart", "postgres", 3.0), Fault("relay", RELAY, 1.0)]
    plan += [Fault("daprd", f, 6.0 if f == RELAY else 3.0) for f in functions]
    plan += [Fault("kafka", "kafka", 15.0)]
    return plan


def short() -> list[Fault]:
    """The run inside `make test`: one fault of each kind."""
    return [Fault("relay", RELAY, 1.0), Fault("kafka", "kafka", 10.0), Fault("kill", "on-task-event", 6.0),
            Fault("daprd", "audit-sink", 5.0), Fault("restart", "postgres", 3.0)]


class Injector(threading.Thread):
    """Runs ``plan`` spread over the first ``within`` seconds of the load (``clock``: seconds since its
    start), recording when each fault began and when its target answered again."""

    def __init__(self, stack: Stack, plan: list[Fault], within: float, clock: Callable[[], float],
                 engine: Engine) -> None:
        super().__init__(name="chaos-faults", daemon=True)
        self.stack, self.plan, self.clock, self.engine = stack, plan, clock, engine
        gap = within / max(1, len(plan))
        self.starts = [5.0 + i * gap for i in range(len(plan))]
        self.windows: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        for at, fault in zip(self.starts, self.plan, strict=True):
            time.sleep(max(0.0, at - self.clock()))
            window: dict[str, Any] = {"kind": fault.kind, "target": fault.target, "start": self.clock()}
            try:
                self._make(fault, window)
                time.sleep(fault.down)
                self._undo(fault)
            except Exception as exc:  # a fault that cannot be undone is a finding, not a crash of the run
                self.errors.append(f"{fault.kind} {fault.target}: {type(exc).__name__}: {exc}")
            window["end"] = self.clock()
            self.windows.append(window)

    def _make(self, fault: Fault, window: dict[str, Any]) -> None:
        if fault.kind == "kafka":
            self.stack.stop_kafka()
        elif fault.kind == "kill":
            self.stack.kill(fault.target)
        elif fault.kind == "daprd":
            self.stack.kill(f"{fault.target}.daprd")
        elif fault.kind == "restart":
            self.stack.stop_postgres()
        elif fault.kind == "relay":
            window["in_flight"] = self._wait_for_rows_in_flight()
            window["start"] = self.clock()  # the kill, not the wait for a drain to hit
            self.stack.kill(fault.target)
        else:
            raise ValueError(f"no such fault kind: {fault.kind}")

    def _undo(self, fault: Fault) -> None:
        if fault.kind == "kafka":
            self.stack.start_kafka()
        elif fault.kind in ("kill", "relay"):
            self.stack.start_function(fault.target, sidecar=False)
        elif fault.kind == "daprd":
            self.stack.start_function(fault.target, app=False)
        elif fault.kind == "restart":
            self.stack.start_postgres()

    def _wait_for_rows_in_flight(self, timeout: float = 5.0) -> int:
        """Rows committed and not yet marked published: the relay has them in hand (or is about to)."""
        deadline = time.monotonic() + timeout
        pending = 0
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                pending = conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"
                                            " AND payload LIKE :source"),
                                       {"source": f'%"/todo/functions/{RELAY}"%'}).scalar_one()
            if pending:
                break
            time.sleep(0.002)
        return int(pending)
