"""Recurrence rules (RFC 5545 RRULE) as tasks carry them.

Validation, and the expansion of a series into its next instance (``on-task-event`` applies it).
docs/recurrence.md tells the whole story; the evaluation itself is :mod:`todo.domain.expansion`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from .errors import FieldError
from .expansion import MAX_CANDIDATES, Budget, Found, first_after
from .rules import MAX_COUNT, MAX_INTERVAL, MAX_RULE_LENGTH, canonical, parse_rule, split_parts

__all__ = ["ANCHORS", "EARLIEST_DUE", "LATEST_DUE", "MAX_COUNT", "MAX_INTERVAL", "MAX_RULE_LENGTH", "Anchor",
           "NextInstance", "Recurrence", "Schedule", "check_series", "local_instant", "normalize_rrule"]

Anchor = Literal["schedule", "completion"]
ANCHORS: tuple[Anchor, ...] = ("schedule", "completion")

# The due dates a series may have, first instance and every later one: wide enough for any task, and far
# enough inside the calendar (years 1 to 9999) that no zone's offset nor a year of search steps out of it.
EARLIEST_DUE = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_DUE = datetime(3000, 1, 1, tzinfo=UTC)  # excluded
_REFERENCE = datetime(2024, 1, 1)  # a Monday, 1 January: every default a rule takes from it exists
_NO_NEXT = (f"the rule produces no occurrence after the due date within the evaluation limit "
            f"({MAX_CANDIDATES} candidates, about 27 years of days): it never occurs from this date or too rarely")
_TOO_COSTLY = "the rule is too costly to evaluate; simplify it"


@dataclass(frozen=True)
class Recurrence:
    rrule: str
    anchor: Anchor = "schedule"

    def to_json(self) -> dict[str, str]:
        return {"rrule": self.rrule, "anchor": self.anchor}


def normalize_rrule(text: str) -> str:
    """Validate an RRULE value and return it in canonical form (upper-case, no ``RRULE:`` prefix).

    Raises ``ValueError`` with a message meant for the person who wrote the rule. What depends on the
    due date (a rule that cannot occur from it, UNTIL before it) is :func:`check_series`'s.
    """
    value = canonical(split_parts(text))
    rule = parse_rule(value)
    # A rule such as FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30 parses but never occurs, whatever the start.
    # INTERVAL is left out: its phase depends on the due date, and it only ever removes occurrences.
    found = first_after(replace(rule, interval=1), _REFERENCE, _REFERENCE - timedelta(seconds=1),
                        _wall_limit(ZoneInfo("UTC")))
    if found.stop == "over_budget":
        raise ValueError(_TOO_COSTLY)
    if found.value is None:
        raise ValueError(f"the rule never produces an occurrence (none within the evaluation limit of "
                         f"{MAX_CANDIDATES} candidates)")
    return value


def check_series(recurrence: Recurrence, timezone: str, due_at: datetime) -> list[FieldError]:
    """What stops a series of ``recurrence`` from starting at ``due_at`` in ``timezone`` (nothing: [])."""
    if not EARLIEST_DUE <= due_at < LATEST_DUE:
        return [FieldError("due_at", f"a recurring task is due from {EARLIEST_DUE:%Y-%m-%d} to before "
                                     f"{LATEST_DUE:%Y-%m-%d} (UTC)")]
    try:
        rule = parse_rule(recurrence.rrule)
        zone = ZoneInfo(timezone)
    except (ValueError, KeyError) as exc:  # validated at the edge already; a caller of the domain may not have
        return [FieldError("recurrence.rrule", str(exc))]
    if rule.until is not None and _until(rule.until, zone) < due_at:
        return [FieldError("recurrence.rrule", "UNTIL is before the due date: the series would end before it starts")]
    start = _wall(due_at, zone)
    found = first_after(rule, start, start, _wall_limit(zone))
    if found.stop == "over_budget":
        return [FieldError("recurrence.rrule", _TOO_COSTLY)]
    if found.value is None:
        return [FieldError("recurrence.rrule", _NO_NEXT)]
    return []


# -- expansion -------------------------------------------------------------------------------------
# A series is expanded on wall-clock time in its IANA zone, as RFC 5545 does with a DTSTART carrying
# a TZID: "daily at 09:00 America/New_York" stays at 09:00 local across daylight-saving changes.
# COUNT and UNTIL are applied here rather than by the expansion: COUNT counts the instances generated
# (skipped past occurrences are not instances), and UNTIL is an instant, compared as one.

Ending = Literal["count", "until", "exhausted", "capped", "out_of_range", "invalid", "over_budget"]
"""Why a series has no next instance: ``count`` and ``until`` — the rule says so; ``exhausted`` — no
occurrence before the end of the accepted range; ``capped`` — none within the evaluation limit;
``out_of_range`` — a date of the series is outside the accepted range; ``invalid`` — the stored rule or
zone is no longer accepted; ``over_budget`` — the evaluation ran out of time (not the rule's fault: the
caller should not end the series on it)."""


@dataclass(frozen=True)
class NextInstance:
    due: datetime | None  # UTC; None: no next instance, ``ending`` says why
    ending: Ending | None = None
    examined: int = 0  # candidates the evaluation looked at


@dataclass(frozen=True)
class Schedule:
    rrule: str  # canonical, as normalize_rrule returns it
    anchor: Anchor
    timezone: str
    dtstart: datetime  # aware: the due date of the series' first instance

    def next_due(self, occurrence: int, due_at: datetime | None, completed_at: datetime | None,
                 now: datetime) -> datetime | None:
        """When instance ``occurrence + 1`` is due, or None when the series is over (see next_instance)."""
        return self.next_instance(occurrence, due_at, completed_at, now).due

    def next_instance(self, occurrence: int, due_at: datetime | None, completed_at: datetime | None,
                      now: datetime, budget: Budget | None = None) -> NextInstance:
        """Instance ``occurrence + 1``: when it is due, or why there is none. Never raises.

        ``schedule``: the first occurrence of the rule after both the current instance's due date and
        ``now`` (completing an overdue instance never floods the list with past ones).
        ``completion``: the rule restarted at the completion day, keeping the due time of day.
        """
        try:
            rule = parse_rule(self.rrule)
            zone = ZoneInfo(self.timezone)
        except (ValueError, KeyError):
            return NextInstance(None, "invalid")
        if rule.count is not None and occurrence >= rule.count:
            return NextInstance(None, "count")
        instants = [self.dtstart, due_at or self.dtstart, completed_at or now, now]
        if not all(EARLIEST_DUE <= t < LATEST_DUE for t in instants):
            return NextInstance(None, "out_of_range")
        due_local = (due_at or self.dtstart).astimezone(zone)
        if self.anchor == "completion":
            done = (completed_at or now).astimezone(zone)
            start = datetime.combine(done.date(), due_local.time().replace(tzinfo=None))
            floor = start
        else:
            start = _wall(self.dtstart, zone)
            floor = max(_wall(due_local, zone), _wall(now, zone))
        until = _until(rule.until, zone) if rule.until is not None else None
        found = first_after(rule, start, floor, _wall_limit(zone, until), budget)
        return _instance(found, zone, until)


def _instance(found: Found, zone: ZoneInfo, until: datetime | None) -> NextInstance:
    if found.value is None:
        ending: Ending = "capped" if found.stop == "capped" else (
            "over_budget" if found.stop == "over_budget" else "exhausted")
        return NextInstance(None, ending, found.examined)
    instant = local_instant(found.value, zone)
    if until is not None and instant > until:
        return NextInstance(None, "until", found.examined)
    due = instant.astimezone(UTC)
    if not EARLIEST_DUE <= due < LATEST_DUE:
        return NextInstance(None, "exhausted", found.examined)
    return NextInstance(due, None, found.examined)


def _wall(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone).replace(tzinfo=None)


def _wall_limit(zone: ZoneInfo, until: datetime | None = None) -> datetime:
    """Where a search stops, on the wall clock: a day past the end of the accepted range or UNTIL (the
    exact instants are compared afterwards; a day covers every offset and daylight-saving fold)."""
    end = LATEST_DUE if until is None else min(max(until, EARLIEST_DUE), LATEST_DUE)
    return _wall(end, zone) + timedelta(days=1)


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
