"""RRULE text (RFC 5545 §3.3.10) as tasks carry it: parsed into a :class:`Rule`, strictly.

Every value is checked against the grammar and its range here, so that evaluation
(:mod:`todo.domain.expansion`) never meets a value it cannot handle. The canonical text of a rule is its
parts upper-cased, in the order given, without an ``RRULE:`` prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY = range(5)  # coarse to fine, as dateutil numbers them
FREQUENCIES = {"YEARLY": YEARLY, "MONTHLY": MONTHLY, "WEEKLY": WEEKLY, "DAILY": DAILY, "HOURLY": HOURLY}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

MAX_RULE_LENGTH = 500
MAX_COUNT = 1000
MAX_INTERVAL = 1000

# Below hourly a "task" is a timer: such rules are refused rather than flooding the list.
_TOO_FINE = {"SECONDLY", "MINUTELY"}
_FORBIDDEN_PARTS = {"DTSTART", "BYSECOND", "BYMINUTE"}
_NUMBER = re.compile(r"[0-9]{1,4}")
_SIGNED = re.compile(r"[+-]?[0-9]{1,4}")
_DAY = re.compile(r"(?:([+-]?)([0-9]{1,2}))?(MO|TU|WE|TH|FR|SA|SU)")
_UNTIL = re.compile(r"[0-9]{8}(?:T[0-9]{6}Z?)?")


@dataclass(frozen=True)
class Rule:
    """A parsed rule. An empty ``by*`` set means the part was not given."""

    freq: int
    interval: int = 1
    count: int | None = None
    until: str | None = None  # as written: 20270101T000000Z (UTC), 20270101T000000 (floating) or 20270101
    wkst: int = 0  # Monday, RFC 5545's default
    bysetpos: tuple[int, ...] = ()
    bymonth: frozenset[int] = frozenset()
    byweekno: frozenset[int] = frozenset()
    byyearday: frozenset[int] = frozenset()
    bymonthday: frozenset[int] = frozenset()  # 1..31 and -31..-1
    byweekday: frozenset[int] = frozenset()  # plain weekdays, 0 = Monday
    bynweekday: frozenset[tuple[int, int]] = frozenset()  # (weekday, ordinal): MONTHLY and YEARLY only
    byhour: frozenset[int] = frozenset()


def split_parts(text: str) -> dict[str, str]:
    """The parts of an RRULE value by name, upper-cased, in the order given."""
    rule = text.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[len("RRULE:") :]
    if not rule or "\n" in rule or "\r" in rule:
        raise ValueError("must be a single RRULE value such as FREQ=WEEKLY;BYDAY=MO,WE")
    if len(rule) > MAX_RULE_LENGTH:
        raise ValueError(f"a rule has at most {MAX_RULE_LENGTH} characters")
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
    return parts


def canonical(parts: dict[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in parts.items())


@lru_cache(maxsize=4096)
def parse_rule(text: str) -> Rule:
    """The rule an RRULE value states; ``ValueError`` with a message for the person who wrote it."""
    return _parse(split_parts(text))


def _parse(parts: dict[str, str]) -> Rule:
    freq = parts.get("FREQ")
    if freq is None:
        raise ValueError("FREQ is required")
    if freq not in FREQUENCIES:
        if freq in _TOO_FINE:
            raise ValueError(f"FREQ={freq} is not allowed; use HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY")
        raise ValueError(f"not a valid RRULE: unknown FREQ={freq}; use HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL must not both be given (RFC 5545)")
    count = _bounded(parts, "COUNT", 1, MAX_COUNT)
    interval = _bounded(parts, "INTERVAL", 1, MAX_INTERVAL)
    until = parts.get("UNTIL")
    if until is not None:
        _check_until(until)
    fields: dict[str, frozenset[int]] = {}
    for name, low, high, signed in (("BYMONTH", 1, 12, False), ("BYWEEKNO", 1, 53, True),
                                    ("BYYEARDAY", 1, 366, True), ("BYMONTHDAY", 1, 31, True),
                                    ("BYHOUR", 0, 23, False)):
        if name in parts:
            fields[name] = frozenset(_numbers(name, parts[name], low, high, signed))
    setpos = tuple(sorted(set(_numbers("BYSETPOS", parts["BYSETPOS"], 1, 366, True)))) if "BYSETPOS" in parts else ()
    plain, nth = _days(parts.get("BYDAY"), FREQUENCIES[freq])
    wkst = parts.get("WKST", "MO")
    if wkst not in WEEKDAYS:
        raise ValueError(f"not a valid RRULE: WKST={wkst} is not a weekday (MO, TU, …, SU)")
    unknown = set(parts) - {"FREQ", "COUNT", "INTERVAL", "UNTIL", "BYMONTH", "BYWEEKNO", "BYYEARDAY",
                            "BYMONTHDAY", "BYHOUR", "BYSETPOS", "BYDAY", "WKST"}
    if unknown:
        raise ValueError(f"not a valid RRULE: unknown rule part {sorted(unknown)[0]} (RFC 5545 parts only)")
    return Rule(freq=FREQUENCIES[freq], interval=interval or 1, count=count, until=until,
                wkst=WEEKDAYS.index(wkst), bysetpos=setpos, bymonth=fields.get("BYMONTH", frozenset()),
                byweekno=fields.get("BYWEEKNO", frozenset()), byyearday=fields.get("BYYEARDAY", frozenset()),
                bymonthday=fields.get("BYMONTHDAY", frozenset()), byweekday=plain, bynweekday=nth,
                byhour=fields.get("BYHOUR", frozenset()))


def _bounded(parts: dict[str, str], name: str, low: int, high: int) -> int | None:
    # Checked before anything expands the rule: INTERVAL=0 would never advance.
    if name not in parts:
        return None
    value = parts[name]
    if not _NUMBER.fullmatch(value) or not low <= int(value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return int(value)


def _numbers(name: str, text: str, low: int, high: int, signed: bool) -> list[int]:
    values = []
    for item in text.split(","):
        if not (_SIGNED if signed else _NUMBER).fullmatch(item):
            raise ValueError(f"not a valid RRULE: {name} takes a comma list of {'signed ' if signed else ''}numbers")
        value = int(item)
        if not low <= abs(value) <= high or (signed and value == 0):
            sign = "±" if signed else ""
            raise ValueError(f"not a valid RRULE: {name} values are {sign}{low} to {sign}{high}, not {item}")
        values.append(value)
    return values


def _days(text: str | None, freq: int) -> tuple[frozenset[int], frozenset[tuple[int, int]]]:
    if text is None:
        return frozenset(), frozenset()
    plain: set[int] = set()
    nth: set[tuple[int, int]] = set()
    for item in text.split(","):
        found = _DAY.fullmatch(item)
        if found is None:
            raise ValueError(f"not a valid RRULE: BYDAY value {item!r} is not a weekday such as MO, 1MO or -1FR")
        sign, digits, day = found.groups()
        weekday = WEEKDAYS.index(day)
        if digits is None:
            plain.add(weekday)
            continue
        n = int(digits)
        if not 1 <= n <= 53:
            raise ValueError(f"not a valid RRULE: the ordinal of BYDAY={item} must be 1 to 53")
        # An ordinal selects within a month or a year; finer frequencies keep only the weekday (as
        # dateutil, which this project's expansion follows, does).
        if freq in (YEARLY, MONTHLY):
            nth.add((weekday, -n if sign == "-" else n))
        else:
            plain.add(weekday)
    return frozenset(plain), frozenset(nth)


def _check_until(text: str) -> None:
    formats = {8: "%Y%m%d", 15: "%Y%m%dT%H%M%S", 16: "%Y%m%dT%H%M%SZ"}
    if _UNTIL.fullmatch(text):
        try:
            datetime.strptime(text, formats[len(text)])
            return
        except ValueError:
            pass
    raise ValueError("not a valid RRULE: UNTIL must be a date (20271231) or a date-time, "
                     "UTC (20271231T235959Z) or in the task's zone (20271231T235959)")
