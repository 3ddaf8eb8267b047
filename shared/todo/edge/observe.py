"""What every function answers to its platform, beside its own routes: readiness and metrics.

``/healthz`` (liveness) is answered by the edges themselves and touches nothing. ``/readyz`` checks what
a request would need: the database, and the sidecar where events go through daprd (its
``/v1.0/healthz/outbound``, which is ready once its components are, without waiting for this app: the
plain healthz waits for the app, and the two would wait for each other). ``/metrics`` refreshes the
gauges that are the database's facts, then writes every family (todo.metrics).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from starlette.responses import JSONResponse, Response

from .. import metrics
from ..routes import TICKS
from ..runtime import Runtime
from .problems import HttpProblem
from .threads import in_thread

log = logging.getLogger(__name__)
READY_TIMEOUT_SECONDS = 2.0
# The functions that write the outbox are those the outbox sweep ticks: they report its backlog.
OUTBOX_WRITERS = frozenset(f for tick in TICKS if tick.name == "outbox-sweep" for f in tick.functions)
AUDITOR = "audit-sink"


async def ready(runtime: Runtime, function: str) -> Response:
    checks = await in_thread(_checks, runtime)
    failed = {name: state for name, state in checks.items() if state != "ok"}
    if failed:
        log.warning("not ready", extra={"checks": checks})
        return HttpProblem(503, "Not ready", "; ".join(f"{k}: {v}" for k, v in failed.items())).response()
    return JSONResponse({"status": "ready", "function": function, "checks": checks})


def _checks(runtime: Runtime) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable ({type(exc).__name__})"
    if runtime.base_settings.events == "dapr":
        import httpx  # only functions beside a sidecar get here

        url = f"http://127.0.0.1:{runtime.base_settings.dapr_http_port}/v1.0/healthz/outbound"
        try:
            status = httpx.get(url, timeout=READY_TIMEOUT_SECONDS).status_code
            checks["sidecar"] = "ok" if status < 300 else f"answers {status}"
        except httpx.HTTPError as exc:
            checks["sidecar"] = f"unavailable ({type(exc).__name__})"
    return checks


async def metrics_response(runtime: Runtime, function: str) -> Response:
    body, content_type = await in_thread(_scrape, runtime, function)
    return Response(body, media_type=content_type)


def _scrape(runtime: Runtime, function: str) -> tuple[bytes, str]:
    try:
        _database_gauges(runtime, function)
    except Exception:  # the database is away: the counters are still worth a scrape, the gauges keep their last value
        log.warning("metrics: the database gauges could not be read", exc_info=True)
    return metrics.exposition()


def _database_gauges(runtime: Runtime, function: str) -> None:
    from ..adapters.tables import audit_chain_heads, outbox

    if function not in OUTBOX_WRITERS and function != AUDITOR:
        return
    with runtime.engine.connect() as conn:
        if function in OUTBOX_WRITERS:
            row: Any = conn.execute(select(func.count(), func.min(outbox.c.created_at))
                                    .where(outbox.c.published_at.is_(None))).one()
            oldest = row[1]
            if isinstance(oldest, str):  # SQLite hands back text from an aggregate
                oldest = datetime.fromisoformat(oldest)
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            metrics.OUTBOX_PENDING.set(row[0], function=function)
            metrics.OUTBOX_OLDEST.set(0.0 if oldest is None else max(0.0, (runtime.now() - oldest).total_seconds()),
                                      function=function)
        if function == AUDITOR:
            length = conn.execute(select(func.sum(audit_chain_heads.c.length))).scalar()
            metrics.AUDIT_CHAIN.set(float(length or 0), function=function)
