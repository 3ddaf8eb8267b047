"""ISO 8601 durations of the form used by reminders and snoozes (``PT15M``, ``P1DT2H``, ``P2W``)."""

from __future__ import annotations

import re
from datetime import timedelta

# Each number has at most as many digits as the largest duration allowed needs (366 days is 31,622,400
# seconds): a longer one (P9999999999W) is refused by its form, before timedelta could overflow.
DURATION_PATTERN = (
    r"^P(?!$)(?:(?P<weeks>\d{1,6})W)?(?:(?P<days>\d{1,6})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,8})M)?(?:(?P<seconds>\d{1,8})S)?)?$"
)
_DURATION = re.compile(DURATION_PATTERN)
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """Parse a calendar-free ISO 8601 duration; years and months are refused (their length varies)."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 duration such as PT15M, PT2H or P1D")
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
    value = timedelta(**parts)
    if value <= timedelta(0):
        raise ValueError("duration must be positive")
    if value > MAX_DURATION:
        raise ValueError("duration must not exceed 366 days")
    return value


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return out + ("T" + clock if clock else "")
