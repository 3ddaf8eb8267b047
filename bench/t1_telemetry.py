"""T1 the cost of telemetry: create-task with its spans exported to the stack's Jaeger against the same
function with tracing not configured, alternating runs (P1 cold start and P2 throughput at 8 clients);
the cost of the instrumentation that stays when tracing is off (a no-op span and the metric updates of
one request, timed in-process against the request's own time); and the time of a ``/metrics`` scrape
while P2 loads the function.

"Not configured" cannot be compared with the code before instrumentation in one run; its cost is the
work its hooks do per request, measured directly (the ``off`` row), which bounds what P2 could see.
"""

from __future__ import annotations

import statistics
import threading
import time
import timeit

import httpx

from todo import metrics, tracing
from todo.settings import Settings

from .common import Row, engines, make_stack, median, pct
from .p1_cold_start import PORT, _probe, cold_start
from .p2_create_throughput import FUNCTION, _load

SCRAPE_TIMEOUT_S = 10.0


def _hooks_per_request_us() -> float:
    """What one request costs in telemetry with tracing off: its span (a no-op) and its two metrics."""
    tracing.configure(Settings(), "bench")
    assert not tracing.enabled()

    def request() -> None:
        with tracing.span("POST /tasks", kind="server", parent=None, attributes={"http.request.method": "POST"}):
            tracing.tag("todo.task_id", 1)
        metrics.HTTP_REQUESTS.inc(function="bench", operation="createTask", status="201")
        metrics.HTTP_DURATION.observe(0.004, function="bench", operation="createTask")
        with tracing.span("publish task-events", kind="producer"):
            pass

    number = 20000
    return min(timeit.repeat(request, number=number, repeat=5)) / number * 1e6


def run(quick: bool = False) -> list[Row]:
    seconds = 3 if quick else 10
    repeats = 3 if quick else 5
    rows: list[Row] = []
    off_us = _hooks_per_request_us()
    plain = make_stack("t1", (FUNCTION,))
    traced = make_stack("t1", (FUNCTION,), fresh=False)
    traced.export_traces = True
    traced.export_delay_ms = None  # exported as the cluster exports (knative/functions.yaml): the SDK's batching
    with engines(plain, kafka=True):
        # P1: exec → first created task, the function alone (no daprd), as bench P1 runs it.
        argv = plain.app_command(FUNCTION, PORT)
        env_off = {**plain.env_for(FUNCTION), "PORT": str(PORT)}
        env_on = {**env_off, **traced.tracing_env()}
        cold_off, cold_on = [], []
        for _ in range(repeats):
            cold_off.append(cold_start(argv, env_off, _probe(plain, FUNCTION, None)))
            cold_on.append(cold_start(argv, env_on, _probe(plain, FUNCTION, None)))
        ratio = median(cold_on) / median(cold_off)
        rows.append(Row(
            id="T1", what=f"cold start {FUNCTION}, spans exported vs tracing not configured",
            measured={"exported_median_s": round(median(cold_on), 3), "runs_s": [round(t, 3) for t in cold_on]},
            baseline={"what": "not configured", "median_s": round(median(cold_off), 3),
                      "runs_s": [round(t, 3) for t in cold_off]},
            ratio=round(ratio, 3), ratio_text=f"{ratio - 1:+.1%}", target="≤ +15%", met=ratio <= 1.15,
            samples={"cold exported": [t * 1000 for t in cold_on], "cold off": [t * 1000 for t in cold_off]}))
        print(f"T1 P1 {FUNCTION}: exported {median(cold_on):.3f} s vs off {median(cold_off):.3f} s", flush=True)

        # P2 at 8 clients, alternating the same function restarted with and without the exporter.
        url = f"http://127.0.0.1:{plain.ports(FUNCTION).app}/tasks"
        tps: dict[str, list[float]] = {"off": [], "exported": []}
        lat: dict[str, list[float]] = {"off": [], "exported": []}
        scrapes: list[float] = []
        timeouts: list[float] = []  # scrapes that got no answer within SCRAPE_TIMEOUT_S
        for _ in range(repeats):
            for mode, stack in (("off", plain), ("exported", traced)):
                stack.start_function(FUNCTION)
                _load(url, 8, 1)  # warm-up
                stop = threading.Event()
                scraper = threading.Thread(target=_scrape_while, args=(stack, stop, scrapes, timeouts)) \
                    if mode == "off" else None
                if scraper is not None:
                    scraper.start()
                done, latencies, _errors = _load(url, 8, seconds)
                stop.set()
                if scraper is not None:
                    scraper.join()
                tps[mode].append(done)
                lat[mode].extend(latencies)
                stack.down(engines=False)
        share = median(tps["exported"]) / median(tps["off"])
        rows.append(Row(
            id="T1", what=f"{FUNCTION} 8 clients, spans exported vs tracing not configured",
            measured={"exported_tps": round(median(tps["exported"]), 1),
                      "runs_tps": [round(t, 1) for t in tps["exported"]],
                      "p50_ms": round(pct(lat["exported"], 50), 1), "p99_ms": round(pct(lat["exported"], 99), 1)},
            baseline={"what": "not configured", "tps": round(median(tps["off"]), 1),
                      "runs_tps": [round(t, 1) for t in tps["off"]],
                      "p50_ms": round(pct(lat["off"], 50), 1), "p99_ms": round(pct(lat["off"], 99), 1)},
            ratio=round(share, 3), ratio_text=f"{share - 1:+.1%} tps", target="≥ -15%", met=share >= 0.85,
            samples={"P2 exported": lat["exported"], "P2 off": lat["off"]}))
        per_request_ms = 8 / median(tps["off"]) * 1000  # 8 closed-loop clients: each request's share of time
        off_share = off_us / 1000 / per_request_ms
        rows.append(Row(
            id="T1", what="tracing not configured: the hooks' cost per request",
            measured={"hooks_us": round(off_us, 2), "request_ms": round(per_request_ms, 2)},
            ratio=round(off_share, 5), ratio_text=f"{off_share:.3%} of a request", target="≤ 3%",
            met=off_share <= 0.03,
            notes=["a no-op server and producer span, an attribute, a counter and a histogram update, timed "
                   "in-process (best of 5 runs of 20000); the request's time is 8 clients / P2 tps"]))
        rows.append(Row(
            id="T1", what=f"GET /metrics of {FUNCTION} under P2 load (8 clients)",
            measured={"p50_ms": round(pct(scrapes, 50), 1), "p99_ms": round(pct(scrapes, 99), 1),
                      "max_ms": round(max(scrapes), 1), "scrapes": len(scrapes),
                      "timed_out": len(timeouts)},
            target="—", samples={"scrape": scrapes},
            notes=["one scrape every 0.5 s, the outbox gauges read from PostgreSQL each time"]))
        print(f"T1 P2: exported {median(tps['exported']):.0f} tps vs off {median(tps['off']):.0f} tps; hooks "
              f"{off_us:.2f} us/request; scrape p50 {pct(scrapes, 50):.1f} ms "
              f"(mean {statistics.fmean(scrapes):.1f})", flush=True)
    return rows


def _scrape_while(stack: object, stop: threading.Event, out: list[float], failed: list[float]) -> None:
    from todo_dev.stack import Stack

    assert isinstance(stack, Stack)
    url = f"http://127.0.0.1:{stack.ports(FUNCTION).app}/metrics"
    with httpx.Client(timeout=SCRAPE_TIMEOUT_S) as client:
        while not stop.wait(0.5):
            started = time.perf_counter()
            try:
                ok = client.get(url).status_code == 200
            except httpx.TimeoutException:  # Prometheus' own default scrape timeout is 10 s: a miss, counted
                failed.append(SCRAPE_TIMEOUT_S * 1000)
                continue
            if ok:
                out.append((time.perf_counter() - started) * 1000)
