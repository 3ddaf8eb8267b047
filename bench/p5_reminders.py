"""P5 reminders: 10,000 reminders due within one minute (--quick 2,000 within 20 s), on-reminder with its
daprd (the reminder-scan cron binding ticks every second). Lateness = when the scan claimed the reminder
(``reminders.triggered_at``) - when it was due (``remind_at``), and, end to end, the Kafka timestamp of its
``dev.todo.reminder.triggered.v1`` event on topic ``reminders`` - ``remind_at``. No baseline."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from confluent_kafka import Consumer

from todo.service.events import event_type

from .common import Row, engines, make_stack, pct, psql

SEED = """
INSERT INTO tasks (user_id, title, description, status, priority, tags, due_at, timezone, recurrence, reminders,
                   created_at, updated_at, version)
SELECT 'bench-p5-' || (i % 100), 'Reminded ' || i, '', 'open', 2, '[]', now() + interval '1 day', 'UTC', NULL,
       '[{"at": "2030-01-01T00:00:00Z"}]', now(), now(), 1
FROM generate_series(1, %(n)s) AS i;
INSERT INTO reminders (user_id, task_id, spec, remind_at, status, created_at)
SELECT user_id, id, '0', now() + interval '5 seconds' + random() * interval '%(window)s seconds', 'scheduled', now()
FROM tasks WHERE user_id LIKE 'bench-p5-%%';
"""


def run(quick: bool = False) -> list[Row]:
    n, window = (2_000, 20) if quick else (10_000, 60)
    stack = make_stack("p5", ("on-reminder",))
    with engines(stack, kafka=True):
        stack.start_function("on-reminder")
        psql(stack, SEED.replace("%(n)s", str(n)).replace("%(window)s", str(window)).replace("%%", "%"))
        time.sleep(window + 10)
        rows = psql(stack, "SELECT extract(epoch FROM triggered_at - remind_at) FROM reminders "
                           "WHERE triggered_at IS NOT NULL").split()
        claimed = [float(x) * 1000 for x in rows]
        consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(["reminders"])
        published: list[float] = []
        deadline = time.monotonic() + 30
        while len(published) < len(claimed) and time.monotonic() < deadline:
            for message in consumer.consume(500, 1.0):
                if message.error() is not None:
                    continue
                try:
                    event = json.loads(message.value() or b"")
                    if event.get("type") != event_type("reminder", "triggered"):
                        continue
                    due = datetime.fromisoformat(event["data"]["remind_at"]).timestamp()
                except (ValueError, KeyError, TypeError):
                    continue
                published.append(message.timestamp()[1] - due * 1000)
        consumer.close()
    p99 = pct(claimed, 99)
    print(f"P5: {len(claimed)}/{n} claimed, lateness p50 {pct(claimed, 50):.0f} p99 {p99:.0f} ms; published "
          f"{len(published)}, p50 {pct(published, 50):.0f} p99 {pct(published, 99):.0f} ms", flush=True)
    pub99 = pct(published, 99)
    return [
        Row(id="P5", what=f"{n:,} reminders due within {window} s: lateness of the claim (triggered_at)",
            measured={"p50_ms": round(pct(claimed, 50)), "p99_ms": round(p99), "triggered": len(claimed)},
            target="p99 ≤ 1 s", met=len(claimed) == n and p99 <= 1000,
            samples={"claimed - due": [max(x, 0.1) for x in claimed]}),
        Row(id="P5", what=f"{n:,} reminders due within {window} s: lateness of the triggered event on Kafka",
            measured={"p50_ms": round(pct(published, 50)), "p99_ms": round(pub99), "published": len(published)},
            target="p99 ≤ 1 s", met=len(published) == n and pub99 <= 1000,
            samples={"published - due": [max(x, 0.1) for x in published]}),
    ]
