"""P3 freshness: POST /tasks → the WebSocket push, through real Kafka and daprd (create-task's outbox relay →
its daprd → Kafka task-updates → push-update's daprd → push-update → the socket), at a steady 100 creates/s
(60 s; --quick 10 s), p50/p99 from the POST being sent to the push arriving. Baseline: a raw Kafka
produce→consume probe at the same rate (confluent_kafka, its own topic). Alternating segments.

Each hop's share of the mean comes from the functions' own histograms (one host, one clock), scraped
before and after the measured segments: change → publish (create-task's write, commit and relay, to the
broker's confirmation), publish → delivery (Kafka, push-update's daprd, to the hand-over to the hub),
delivery → send (the hub to the socket); the rest is the client's (the POST's way in, the push's way out).
The share of pushes the feed sent (push-update's poll saw the change before Kafka brought it) is printed too."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from todo_dev.stack import Stack

from .common import Row, cpu_by_role, engines, headers, make_stack, median, pct, token

FUNCTIONS = ("create-task", "push-update")
RATE = 100.0
USERS = 4
PROBE_TOPIC = "bench-probe"
# (series, one label's value, a bucket's bound or "") → the value summed over the other labels
Scrape = dict[tuple[str, str, str], float]


def _scrape(stack: Stack, function: str, label: str) -> Scrape:
    text = httpx.get(f"http://127.0.0.1:{stack.ports(function).app}/metrics", timeout=10).text
    found: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, sample.labels.get(label, ""), sample.labels.get("le", ""))
            found[key] = found.get(key, 0.0) + sample.value
    return found


def _mean_ms(before: Scrape, after: Scrape, histogram: str, label: str) -> tuple[float, int]:
    """The mean (ms) and count of what a histogram observed between two scrapes."""
    count = after.get((f"{histogram}_count", label, ""), 0.0) - before.get((f"{histogram}_count", label, ""), 0.0)
    total = after.get((f"{histogram}_sum", label, ""), 0.0) - before.get((f"{histogram}_sum", label, ""), 0.0)
    return (total / count * 1000 if count else float("nan")), int(count)


def _p99_ms(before: Scrape, after: Scrape, histogram: str, label: str) -> float | None:
    """The p99 (ms) of what a histogram observed between two scrapes, interpolated in its bucket as
    Prometheus' histogram_quantile does."""
    bounds = sorted({le for name, value, le in after if name == f"{histogram}_bucket" and value == label},
                    key=float)
    counts = [after[(f"{histogram}_bucket", label, le)] - before.get((f"{histogram}_bucket", label, le), 0.0)
              for le in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank, lower, below = 0.99 * counts[-1], 0.0, 0.0
    for le, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if le == "+Inf":
                return lower * 1000
            return (lower + (float(le) - lower) * (rank - below) / max(1e-9, cumulative - below)) * 1000
        lower, below = float(le), cumulative
    return None


def _hops(before: tuple[Scrape, Scrape], after: tuple[Scrape, Scrape], end_to_end_ms: float) -> dict[str, Any]:
    """The Kafka path's hops (mean ms, share of that path's change → send), from create-task's and
    push-update's scrapes, and beside them the feed's path and the client's part of the mean POST → push.

    Every event is published and delivered, including those whose push the feed had sent already (their
    event comes late and is a no-op there), so change → publish and → delivery average over all events;
    delivery → send is over the pushes that an event sent. The client's part is the mean POST → push less
    the mean change → send of both paths: the POST's way in before the change, the push's way out."""
    published, n_published = _mean_ms(before[0], after[0], "todo_outbox_publish_lag_seconds", "task-updates")
    delivered, n_delivered = _mean_ms(before[1], after[1], "todo_push_lag_seconds", "")
    by_event, events = _mean_ms(before[1], after[1], "todo_push_send_lag_seconds", "event")
    by_feed, feeds = _mean_ms(before[1], after[1], "todo_push_send_lag_seconds", "feed")
    sent = ((by_event * events if events else 0.0) + (by_feed * feeds if feeds else 0.0)) / max(1, events + feeds)
    path = {"change→publish": published, "publish→delivery": delivered - published,
            "delivery→send": by_event - delivered}
    # The tail, hop by hop: each histogram's p99 is from the change, so a hop's p99 is not a difference.
    tail = {"change→publish": _p99_ms(before[0], after[0], "todo_outbox_publish_lag_seconds", "task-updates"),
            "change→delivery": _p99_ms(before[1], after[1], "todo_push_lag_seconds", ""),
            "change→send (event)": _p99_ms(before[1], after[1], "todo_push_send_lag_seconds", "event"),
            "change→send (feed)": _p99_ms(before[1], after[1], "todo_push_send_lag_seconds", "feed")}
    return {"mean_ms": {k: round(v, 1) for k, v in path.items()},
            "p99_from_change_ms": {k: None if v is None else round(v, 1) for k, v in tail.items()},
            "share": {k: round(v / by_event, 3) if events else None for k, v in path.items()},
            "feed_change→send_ms": round(by_feed, 1) if feeds else None,
            "sent_by_feed": round(feeds / max(1, events + feeds), 3),
            "client_ms": round(end_to_end_ms - sent, 1),
            "client_share": round((end_to_end_ms - sent) / end_to_end_ms, 3),
            "counts": {"published": n_published, "delivered": n_delivered, "sent": events + feeds}}


def _drained(stack: Stack) -> Scrape:
    """create-task's scrape once its outbox is empty (at most 30 s): a segment ends when every push came, and
    the feed sends some before their events are published, so the relay may still be at work."""
    deadline = time.monotonic() + 30
    while True:
        found = _scrape(stack, "create-task", "topic")
        if found.get(("todo_outbox_pending", "", ""), 0.0) == 0 or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _host_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole host so far, from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [float(x) for x in stat.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _segment_app(stack: Stack, seconds: float) -> tuple[list[float], int]:
    """Latencies (ms) of one segment of creates at RATE/s, and how many pushes never came.

    One asyncio loop does the POSTs and reads the sockets: reader threads beside it would contend for the
    GIL with the loop and put their own scheduling delay into every push's latency."""
    return asyncio.run(_segment_app_async(stack, seconds))


async def _segment_app_async(stack: Stack, seconds: float) -> tuple[list[float], int]:
    users = [f"bench-p3-{uuid.uuid4().hex[:8]}" for _ in range(USERS)]
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    ws_url = f"ws://127.0.0.1:{stack.ports('push-update').app}/ws"
    sockets = [await ws_connect(ws_url, subprotocols=["bearer", token(u)], open_timeout=10)  # type: ignore[list-item]
               for u in users]

    async def read(socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                got.setdefault(json.loads(raw)["task"]["id"], time.perf_counter())

    readers = [asyncio.create_task(read(s)) for s in sockets]
    url = f"http://127.0.0.1:{stack.ports('create-task').app}/tasks"
    errors = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as client:
        auth = [headers(u) for u in users]

        async def one(i: int) -> None:
            nonlocal errors
            start = time.perf_counter()
            try:
                response = await client.post(url, json={"title": f"fresh {i}"}, headers=auth[i % USERS])
            except httpx.HTTPError:  # counted, not fatal: an overloaded function may drop a connection
                errors += 1
                return
            if response.status_code == 201:
                sent[response.json()["id"]] = start
            else:
                errors += 1

        pending = []
        began = time.perf_counter()
        for i in range(int(seconds * RATE)):
            await asyncio.sleep(max(0.0, began + i / RATE - time.perf_counter()))
            pending.append(asyncio.create_task(one(i)))
        await asyncio.gather(*pending)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not set(sent) <= set(got):
        await asyncio.sleep(0.1)
    for socket in sockets:
        await socket.close()
    await asyncio.gather(*readers)
    latencies = [(got[i] - t) * 1000 for i, t in sent.items() if i in got]
    return latencies, errors + len(set(sent) - set(got))


def _segment_kafka(stack: Stack, seconds: float) -> tuple[list[float], int]:
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "linger.ms": 0})
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                         "auto.offset.reset": "latest", "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    assigned = threading.Event()
    consumer.subscribe([PROBE_TOPIC], on_assign=lambda c, p: assigned.set())
    got: dict[str, float] = {}
    sent: dict[str, float] = {}
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            message = consumer.poll(0.1)
            if message is not None and message.error() is None and (key := message.key()) is not None:
                got.setdefault(key.decode(), time.perf_counter())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assigned.wait(30)
    time.sleep(1.0)  # the consumer positioned at the end of each partition
    began = time.perf_counter()
    for i in range(int(seconds * RATE)):
        time.sleep(max(0.0, began + i / RATE - time.perf_counter()))
        key = uuid.uuid4().hex
        sent[key] = time.perf_counter()
        producer.produce(PROBE_TOPIC, key=key, value=json.dumps({"title": f"fresh {i}"}).encode())
        producer.poll(0)
    producer.flush(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not set(sent) <= set(got):
        time.sleep(0.05)
    stop.set()
    reader.join()
    consumer.close()
    return [(got[k] - t) * 1000 for k, t in sent.items() if k in got], len(set(sent) - set(got))


def run(quick: bool = False) -> list[Row]:
    total = 10.0 if quick else 60.0
    repeats = 5
    stack = make_stack("p3", FUNCTIONS)
    with engines(stack, kafka=True):
        for function in FUNCTIONS:
            stack.start_function(function)
        admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap})
        for future in admin.create_topics([NewTopic(PROBE_TOPIC, 3, 1)]).values():
            try:
                future.result(30)
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        del admin
        _segment_app(stack, 1.0)  # warm-up: subscription, connections
        scraped = (_drained(stack), _scrape(stack, "push-update", "path"))
        app: list[float] = []
        raw: list[float] = []
        app_p99, raw_p99, lost = [], [], 0
        busy, ticks, wall, roles = 0.0, 0.0, 0.0, dict[str, float]()
        for _ in range(repeats):  # alternate: app segment, Kafka probe segment…
            before, roles_before, began = _host_cpu(), cpu_by_role(), time.monotonic()
            lat, missing = _segment_app(stack, total / repeats)
            after, roles_after = _host_cpu(), cpu_by_role()
            busy, ticks = busy + after[0] - before[0], ticks + after[1] - before[1]
            wall += time.monotonic() - began
            for role, seconds in roles_after.items():
                roles[role] = roles.get(role, 0.0) + seconds - roles_before.get(role, 0.0)
            app.extend(lat)
            app_p99.append(pct(lat, 99))
            lost += missing
            lat, _ = _segment_kafka(stack, total / repeats)
            raw.extend(lat)
            raw_p99.append(pct(lat, 99))
        hops = _hops(scraped, (_drained(stack), _scrape(stack, "push-update", "path")),
                     sum(app) / max(1, len(app)))
        ratio = pct(app, 99) / pct(raw, 99)
        print(f"P3: app p50 {pct(app, 50):.1f} p99 {pct(app, 99):.1f} ms (missing {lost}); Kafka p50 "
              f"{pct(raw, 50):.1f} p99 {pct(raw, 99):.1f} ms = {ratio:.2f}x", flush=True)
        shares = hops["share"]
        print("P3 Kafka path (mean ms, share): " + ", ".join(
            f"{hop} {mean} ({shares[hop] or 0:.0%})" for hop, mean in hops["mean_ms"].items())
            + f"; {hops['sent_by_feed']:.0%} sent from the feed ({hops['feed_change→send_ms']} ms); client "
            f"{hops['client_ms']} ms ({hops['client_share']:.0%}); host CPU {busy / max(1.0, ticks):.0%} busy",
            flush=True)
        tail = hops["p99_from_change_ms"]
        print("P3 p99 from the change (ms): " + ", ".join(f"{hop} {ms}" for hop, ms in tail.items()), flush=True)
        cores = {role: round(seconds / wall, 2) for role, seconds in sorted(roles.items(), key=lambda r: -r[1])
                 if seconds / wall >= 0.01}
        print("P3 CPU during the app segments (cores): " + ", ".join(f"{r} {c}" for r, c in cores.items()),
              flush=True)
        return [Row(
            id="P3", what=f"freshness POST→WebSocket push, {RATE:.0f}/s for {total:.0f} s",
            measured={"p50_ms": round(pct(app, 50), 1), "p99_ms": round(pct(app, 99), 1), "pushes": len(app),
                      "missing_or_failed": lost, "median_segment_p99_ms": round(median(app_p99), 1),
                      "hops": hops, "host_cpu_busy": round(busy / max(1.0, ticks), 3), "cores_by_process": cores},
            baseline={"what": "raw Kafka produce→consume", "p50_ms": round(pct(raw, 50), 1),
                      "p99_ms": round(pct(raw, 99), 1)},
            ratio=round(ratio, 2), ratio_text=f"{ratio:.1f}x Kafka p99", target="p99 ≤ 10x, none missing",
            met=ratio <= 10 and lost == 0,
            samples={"POST→push": app, "Kafka produce→consume": raw})]
