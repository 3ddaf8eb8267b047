"""R1 worst-case rule evaluation: the time to validate a rule and to compute a series' next instance, at
most, over the adversarial rules in ``bench/rules/adversarial.txt``, and for a 10-year-old hourly series.

Pure domain: no stack, no database; it runs in seconds. Each rule, from each due date and zone below, is
validated as a create does (``normalize_rrule``, then ``check_series``) and, accepted or not, has its next
instance computed as on-task-event does (``Schedule.next_instance``). A measurement is the median of
``repeats`` runs (the machine is shared: a single run can lose its core); the rows report the largest
median and, so that spikes are not hidden, the slowest single run too.

The baseline of the hourly series is the expansion it replaced: dateutil from the series' first due date
(``rrulestr(...).after(floor)``). The corpus has no baseline: the old code took seconds per rule there
(about 9 s for the first line), which is what the cap exists to prevent.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from todo.domain.expansion import MAX_CANDIDATES
from todo.domain.recurrence import Recurrence, Schedule, check_series, normalize_rrule

from .common import BENCH, Row

CORPUS = BENCH / "rules" / "adversarial.txt"
TARGET_MS = 50.0
NOW = datetime(2026, 5, 6, 12, 34, 56, tzinfo=UTC)
ZONES = ("UTC", "America/New_York", "Pacific/Kiritimati")
DUES = (NOW - timedelta(days=3652), NOW + timedelta(hours=3), datetime(2999, 6, 1, 9, tzinfo=UTC))


def corpus(path: Path = CORPUS) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    """Median and maximum wall-clock milliseconds of ``repeats`` calls, and their maximum CPU milliseconds
    (which a busy machine does not inflate: it measures the work, not the wait for a core)."""
    samples, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu.append((time.thread_time() - start_cpu) * 1000)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), max(samples), max(cpu)


def validate(rule: str, zone: str, due: datetime) -> None:
    """What POST /tasks does with a rule: the field, then the cross-field rule from the due date."""
    try:
        canonical = normalize_rrule(rule)
    except ValueError:
        return
    check_series(Recurrence(canonical), zone, due)


def next_instance(rule: str, zone: str, due: datetime) -> int:
    """What on-task-event does on completing the first instance of a series of ``rule``; candidates examined."""
    return Schedule(rule, "schedule", zone, due).next_instance(1, due, None, max(NOW, due)).examined


def run(quick: bool = False) -> list[Row]:
    repeats = 3 if quick else 9
    rules = corpus()
    cases = [(rule, zone, due) for rule in rules for zone in ZONES for due in DUES]
    for case in cases:  # warm: first calls pay for imports, zone files and the parser's cache
        validate(*case)
        next_instance(*case)
    worst: dict[str, tuple[float, str]] = {"validate": (0.0, ""), "next": (0.0, "")}
    single = {"validate": 0.0, "next": 0.0}
    single_cpu = {"validate": 0.0, "next": 0.0}
    per_rule: dict[str, float] = {}
    most = 0
    for case in cases:
        for name, fn in (("validate", validate), ("next", next_instance)):
            median, highest, highest_cpu = timed(lambda fn=fn, case=case: fn(*case), repeats)  # type: ignore[misc]
            single[name] = max(single[name], highest)
            single_cpu[name] = max(single_cpu[name], highest_cpu)
            if median > worst[name][0]:
                worst[name] = (median, case[0])
            if name == "next":
                per_rule[case[0]] = max(per_rule.get(case[0], 0.0), median)
        most = max(most, next_instance(*case))

    start = NOW - timedelta(days=3652)  # ten years of hours: 87,648 of them
    hourly = Schedule("FREQ=HOURLY", "schedule", "UTC", start)
    h_med, h_max, h_cpu = timed(lambda: hourly.next_instance(1, start, NOW, NOW), repeats * 10)
    old_med, _, _ = timed(lambda: _dateutil_next("FREQ=HOURLY", start, NOW), max(1, repeats // 3))

    def short(rule: str) -> str:
        return rule if len(rule) <= 60 else rule[:57] + "..."

    where = f"{len(rules)} adversarial rules, {len(ZONES)} zones and {len(DUES)} due dates"
    return [
        Row(id="R1", what=f"validate a rule (normalize_rrule + check_series), worst of {where}",
            measured={"max_ms": round(worst["validate"][0], 2), "max_single_ms": round(single["validate"], 2),
                      "max_single_cpu_ms": round(single_cpu["validate"], 2), "worst_rule": short(worst["validate"][1])},
            target=f"≤ {TARGET_MS:g} ms", met=worst["validate"][0] <= TARGET_MS,
            notes=[f"max_ms: the largest median of {repeats} runs over the cases; max_single_ms: the slowest "
                   "single run (wall clock); max_single_cpu_ms: the same in CPU time"]),
        Row(id="R1", what=f"next instance (Schedule.next_instance), worst of {where}",
            measured={"max_ms": round(worst["next"][0], 2), "max_single_ms": round(single["next"], 2),
                      "max_single_cpu_ms": round(single_cpu["next"], 2), "worst_rule": short(worst["next"][1]),
                      "max_candidates": most, "cap": MAX_CANDIDATES},
            target=f"≤ {TARGET_MS:g} ms", met=worst["next"][0] <= TARGET_MS and most <= MAX_CANDIDATES,
            samples={"next instance, per rule (ms)": [max(x, 0.001) for x in per_rule.values()]}),
        Row(id="R1", what="next instance of a 10-year-old FREQ=HOURLY series",
            measured={"median_ms": round(h_med, 3), "max_ms": round(h_max, 3), "max_cpu_ms": round(h_cpu, 3)},
            baseline={"dateutil_from_start_ms": round(old_med, 1)},
            ratio=round(old_med / h_med) if h_med else None,
            ratio_text=f"{old_med / h_med:,.0f}x faster" if h_med else "",
            target=f"≤ {TARGET_MS:g} ms", met=h_max <= TARGET_MS),
    ]


def _dateutil_next(rule: str, start: datetime, now: datetime) -> datetime | None:
    """The expansion this replaced: dateutil from the series' first due date (a dev dependency)."""
    from dateutil import rrule

    return rrule.rrulestr(rule, dtstart=start.replace(tzinfo=None)).after(now.replace(tzinfo=None))  # type: ignore[no-any-return]
