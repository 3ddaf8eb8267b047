"""Recurrence rules (RFC 5545 RRULE) as tasks carry them.

Validation lives here; expanding a series into instances is the job of ``on-task-event``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dateutil import rrule

Anchor = Literal["schedule", "completion"]
ANCHORS: tuple[Anchor, ...] = ("schedule", "completion")

# Below hourly a "task" is a timer: such rules are refused rather than flooding the list.
_ALLOWED_FREQ = {"HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"}
_FORBIDDEN_PARTS = {"DTSTART", "BYSECOND", "BYMINUTE"}
MAX_COUNT = 1000
MAX_INTERVAL = 1000
_SEARCH_WINDOW = timedelta(days=5 * 366)


@dataclass(frozen=True)
class Recurrence:
    rrule: str
    anchor: Anchor = "schedule"

    def to_json(self) -> dict[str, str]:
        return {"rrule": self.rrule, "anchor": self.anchor}


def _in_range(value: str, low: int, high: int) -> bool:
    return value.isdigit() and low <= int(value) <= high


def normalize_rrule(text: str) -> str:
    """Validate an RRULE value and return it in canonical form (upper-case, no ``RRULE:`` prefix).

    Raises ``ValueError`` with a message meant for the person who wrote the rule.
    """
    rule = text.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :]
    if not rule or "\n" in rule or "\r" in rule:
        raise ValueError("must be a single RRULE value such as FREQ=WEEKLY;BYDAY=MO,WE")
    parts: dict[str, str] = {}
    for item in rule.upper().split(";"):
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"malformed rule part {item!r}")
        if name in parts:
            raise ValueError(f"rule part {name} appears twice")
        if name in _FORBIDDEN_PARTS:
            raise ValueError(f"rule part {name} is not allowed: the series starts at the task's due date")
        parts[name] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise ValueError("FREQ is required")
    if freq not in _ALLOWED_FREQ:
        raise ValueError(f"FREQ={freq} is not allowed; use HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL must not both be given (RFC 5545)")
    if "COUNT" in parts and not _in_range(parts["COUNT"], 1, MAX_COUNT):
        raise ValueError(f"COUNT must be between 1 and {MAX_COUNT}")
    # dateutil loops forever on INTERVAL=0, so the bound is checked before it sees the rule.
    if "INTERVAL" in parts and not _in_range(parts["INTERVAL"], 1, MAX_INTERVAL):
        raise ValueError(f"INTERVAL must be between 1 and {MAX_INTERVAL}")
    canonical = ";".join(f"{k}={v}" for k, v in parts.items())
    start = datetime(2024, 1, 1, 9, 0)
    try:
        parsed = rrule.rrulestr(canonical, dtstart=start, ignoretz=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid RRULE: {exc}") from exc
    # A rule such as FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30 parses but never occurs.
    if parsed.after(start, inc=True) is None and "UNTIL" not in parts and "COUNT" not in parts:
        raise ValueError("the rule never produces an occurrence")
    if "UNTIL" not in parts and "COUNT" not in parts and not parsed.between(start, start + _SEARCH_WINDOW, inc=True):
        raise ValueError("the rule produces no occurrence within five years")
    return canonical
