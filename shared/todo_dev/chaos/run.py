"""One chaos run on a running stack: load and faults together, then settle, collect, check, prove."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine

from ..stack import Stack
from . import collect as gather
from .checker import Collected, Report, check, prove
from .faults import Fault, Injector
from .load import Load, Plan

SETTLE_SECONDS = 300.0  # a consumer behind after Kafka's restart and ten backoffs catches up well within it


@dataclass
class Outcome:
    plan: Plan
    faults: list[Fault]
    data: Collected
    report: Report
    proof: dict[str, bool]
    settled_after: float | None  # seconds after the load and the faults ended; None: it never settled
    fault_errors: list[str] = field(default_factory=list)
    load_errors: list[str] = field(default_factory=list)
    load_seconds: float = 0.0  # at least plan.seconds: the load goes on until the last fault is undone
    last_lag: dict[str, Any] = field(default_factory=dict)

    @property
    def proven(self) -> bool:
        return all(self.proof.values())

    def summary(self) -> dict[str, Any]:
        writes = [c for c in self.data.calls if c["action"] not in ("list", "ticket")]
        return {
            "plan": self.plan.__dict__,
            "load_seconds": self.load_seconds, "writes": len(writes),
            "writes_per_second": round(len(writes) / max(self.load_seconds, 1.0), 1),
            "actions": dict(Counter(c["action"] for c in self.data.calls)),
            "statuses": dict(Counter(str(c["status"]) for c in self.data.calls)),
            "sockets_opened": len(self.data.sockets),
            "events": dict(Counter(r["topic"] for r in self.data.outbox)),
            "faults": self.data.faults, "fault_errors": self.fault_errors,
            "load_errors": {"count": len(self.load_errors), "first": self.load_errors[:10]},
            "settled_after_s": self.settled_after, "lag_at_end": self.last_lag,
            "report": self.report.to_json(), "checker_proof": self.proof,
        }


def chaos(stack: Stack, plan: Plan, faults: list[Fault], prefix: str | None = None) -> Outcome:
    prefix = prefix or f"chaos-{uuid.uuid4().hex[:6]}"
    engine = create_engine(stack.database_url, pool_pre_ping=True)
    try:
        return asyncio.run(_chaos(stack, engine, plan, faults, prefix))
    finally:
        engine.dispose()


async def _chaos(stack: Stack, engine: Engine, plan: Plan, faults: list[Fault], prefix: str) -> Outcome:
    base = f"http://127.0.0.1:{stack.gateway_port}"
    load = Load(base, stack.jwt_secret, plan, prefix)
    # Idle connections expire before the gateway's (uvicorn's keep-alive: 5 s, httpx's default expiry too).
    # Expiring together, a request now and then goes out on a connection the gateway is closing as idle
    # and is reset unanswered (ReadError) without reaching it: a race of the client's pool, which a
    # browser answers by sending again and httpx does not, so it would count as a server error here. The
    # expiry alone did not close it once (a DELETE under the Kafka fault reset 5.4 s after it was sent,
    # the gateway's own upstream call unfailed: its 5 s idle timer, as if the write came late), so the
    # load also sends an idempotent request again, as a browser does, and the table counts it.
    limits = httpx.Limits(max_connections=plan.users * 2, max_keepalive_connections=plan.users * 2,
                          keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, timeout=15.0, limits=limits) as client:
        injector = Injector(stack, faults, within=plan.seconds * 0.85, clock=load.now, engine=engine)
        injector.start()
        await load.run(client, busy=injector.is_alive)
        load_seconds = load.now()
        await asyncio.to_thread(injector.join)
        settled_after, lag = await _settle(stack, engine, load, prefix)
        await load.close_sockets()
    data = await asyncio.to_thread(gather.collect, stack, engine, prefix, load.calls, load.sockets, injector.windows)
    report = check(data)
    return Outcome(plan, faults, data, report, prove(data, report), settled_after, fault_errors=injector.errors,
                   last_lag=lag, load_errors=load.errors, load_seconds=load_seconds)


async def _settle(stack: Stack, engine: Engine, load: Load, prefix: str) -> tuple[float | None, dict[str, Any]]:
    """Until nothing is left to deliver: the outbox empty, every user's socket at the head of its feed, and
    every consumer group at the end of its topics, twice in a row a second apart. On a stack shared with
    other tests a group may stay behind on records that are not ours (a test's own poison): then ten
    seconds in which neither that lag nor our audited count moves will do."""
    started = time.monotonic()
    calm, still = 0, 0
    state: dict[str, Any] = {}
    while time.monotonic() - started < SETTLE_SECONDS:
        try:
            waiting = await asyncio.to_thread(gather.pending, engine, prefix)
            lag = await asyncio.to_thread(gather.consumer_lag, stack)
            heads = await asyncio.to_thread(gather.feed_heads, engine, prefix)
            trail = await asyncio.to_thread(gather.audited, engine, prefix)
        except Exception as exc:  # the engines answer again soon after the last fault; keep asking
            state = {"error": f"{type(exc).__name__}: {exc}"}
            calm = still = 0
        else:
            behind = {u: h - load.last_seq.get(u, 0) for u, h in heads.items() if h > load.last_seq.get(u, 0)}
            before = state
            state = {"outbox_pending": waiting, "consumer_lag": lag, "sockets_behind": behind, "audited": trail}
            delivered = waiting == 0 and not behind
            calm = calm + 1 if delivered and not any(lag.values()) else 0
            still = still + 1 if delivered and state == before else 0
            if calm >= 2 or still >= 10:
                return round(time.monotonic() - started, 1), state
        await asyncio.sleep(1.0)
    return None, state


def table(outcome: Outcome) -> str:
    r = outcome.report
    lines = ["| what | count |", "|---|---|"]
    lines += [f"| lost: {k} | {v} |" for k, v in r.lost.items()]
    lines += [f"| duplicated: {k} | {v} |" for k, v in r.duplicated.items()]
    lines += [f"| reordered: {k} | {v} |" for k, v in r.reordered.items()]
    lines += [f"| outbox rows never published | {r.unpublished} |", f"| dead letters | {r.dead_letters} |",
              f"| republished (same id on Kafka again; allowed) | {r.republished} |",
              "", "| function | calls | 5xx | unanswered | failed during its own outage | seconds failing | resent |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {f} | {h['calls']} | {h['5xx']} | {h['unanswered']} | {h['during_outage']} | {h['down_s']} "
              f"| {h['resent']} |" for f, h in r.http.items()]
    lines += ["", "| fault | target | from s | to s |", "|---|---|---|---|"]
    lines += [f"| {w['kind']} | {w['target']} | {w['start']:.1f} | {w['end']:.1f} |" for w in outcome.data.faults]
    lines += ["", "checker proof (each planted defect found): "
              + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in outcome.proof.items())]
    settled = "never" if outcome.settled_after is None else f"{outcome.settled_after} s after the load"
    lines += [f"settled: {settled}; verdict: "
              + ("CLEAN" if r.clean and outcome.proven else f"{r.failures} failures, {r.server_errors} server errors")]
    return "\n".join(lines)
