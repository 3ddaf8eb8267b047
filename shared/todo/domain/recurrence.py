"""Recurrence rules (RFC 5545 RRULE) as tasks carry them.

Validation, and the expansion of a series into its next instance (``on-task-event`` applies it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

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


# -- expansion -------------------------------------------------------------------------------------
# A series is expanded on wall-clock time in its IANA zone, as RFC 5545 does with a DTSTART carrying
# a TZID: "daily at 09:00 America/New_York" stays at 09:00 local across daylight-saving changes.
# COUNT and UNTIL are applied here rather than by dateutil: COUNT counts the instances generated
# (skipped past occurrences are not instances), and UNTIL is an instant, compared as one.


@dataclass(frozen=True)
class Schedule:
    rrule: str  # canonical, as normalize_rrule returns it
    anchor: Anchor
    timezone: str
    dtstart: datetime  # aware: the due date of the series' first instance

    def next_due(self, occurrence: int, due_at: datetime | None, completed_at: datetime | None,
                 now: datetime) -> datetime | None:
        """When instance ``occurrence + 1`` is due, or None when the series is over.

        ``schedule``: the first occurrence of the rule after both the current instance's due date and
        ``now`` (completing an overdue instance never floods the list with past ones).
        ``completion``: the rule restarted at the completion day, keeping the due time of day.
        """
        zone = ZoneInfo(self.timezone)
        parts = dict(item.split("=", 1) for item in self.rrule.split(";"))
        count = int(parts.pop("COUNT")) if "COUNT" in parts else None
        until = _until(parts.pop("UNTIL"), zone) if "UNTIL" in parts else None
        if count is not None and occurrence >= count:
            return None
        body = ";".join(f"{k}={v}" for k, v in parts.items())
        due_local = (due_at or self.dtstart).astimezone(zone)
        if self.anchor == "completion":
            done = (completed_at or now).astimezone(zone)
            start = datetime.combine(done.date(), due_local.time().replace(tzinfo=None))
            candidate = rrule.rrulestr(body, dtstart=start).after(start, inc=False)
        else:
            start = _wall(self.dtstart, zone)
            floor = max(_wall(due_local, zone), _wall(now, zone))
            candidate = rrule.rrulestr(body, dtstart=start).after(floor, inc=False)
        if candidate is None:
            return None
        instant = local_instant(candidate, zone)
        if until is not None and instant > until:
            return None
        return instant.astimezone(UTC)


def _wall(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone).replace(tzinfo=None)


def local_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of a wall-clock time in ``zone`` (RFC 5545 §3.3.5): a time that falls in a
    spring-forward gap takes the offset from before the gap (02:30 becomes 03:30); a repeated time
    in the autumn takes its first occurrence. That is zoneinfo's fold=0."""
    return wall.replace(tzinfo=zone, fold=0)


def _until(text: str, zone: ZoneInfo) -> datetime:
    if text.endswith("Z"):
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    if "T" in text:  # floating: the series' own wall clock
        return local_instant(datetime.strptime(text, "%Y%m%dT%H%M%S"), zone)
    end_of_day = datetime.strptime(text, "%Y%m%d").replace(hour=23, minute=59, second=59)
    return local_instant(end_of_day, zone)
