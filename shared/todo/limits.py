"""Every range the API accepts, named once: the edge's models use these, the OpenAPI document states them,
and docs/limits.md is generated from :data:`TABLE`.

A limit the domain itself needs (a recurring series' due range, a rule's length, the number of tags) is
the domain's and is imported here, not repeated. Everything else is the edge's: it keeps what no store,
no computation and no other user should meet from reaching them (issue 10, found 6 and 7).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from .domain.durations import DURATION_PATTERN as DURATION_PATTERN  # re-exported: one place to read every limit
from .domain.durations import MAX_DURATION
from .domain.recurrence import EARLIEST_DUE, LATEST_DUE, MAX_COUNT, MAX_INTERVAL, MAX_RULE_LENGTH
from .domain.task import MAX_REMINDERS, MAX_TAGS
from .domain.text import unstorable

# -- date-times -----------------------------------------------------------------------------------
# One range for every date-time a request carries (bodies, queries, cursors, reminders, snoozes): that of a
# recurring series, so that a task can always become one, and far enough inside years 1..9999 that no offset
# and no step of the recurrence leaves the calendar. Compared as given, before any conversion.
EARLIEST_INSTANT = EARLIEST_DUE
LATEST_INSTANT = LATEST_DUE  # excluded
# RFC 3339's date-time, and nothing else that a parser would take for one (an integer epoch, a date alone).
DATE_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"
MAX_DATE_TIME_LENGTH = 32

# -- durations (reminders, snoozes) ---------------------------------------------------------------
MAX_DURATION_LENGTH = 40

# -- text -----------------------------------------------------------------------------------------
MAX_TITLE = 500
MAX_DESCRIPTION = 20_000
MAX_TAG = 50
MAX_TAGS_GIVEN = 200  # before duplicates fold: at most MAX_TAGS distinct
MAX_QUERY_TEXT = 500
MAX_USER_ID = 255
MAX_ACTION = 100
MAX_ZONE_NAME = 64
# Characters a line of text (a title, a tag) may hold: no control character (C0, DEL, C1). A description
# may also hold line breaks and tabs.
LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
TEXT_CONTROLS_ALLOWED = frozenset("\n\r\t")

# -- email ----------------------------------------------------------------------------------------
MAX_EMAIL = 320
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}\.[^@\s\x00-\x1f\x7f]{2,63}$"

# -- integers -------------------------------------------------------------------------------------
# Ids and sequence numbers are the databases' BIGINT: a larger number names nothing and no query may
# carry it to the driver (SQLite raises OverflowError beyond 64 bits).
MAX_ID = 2**63 - 1
MAX_SEQ = 2**62
MAX_ID_DIGITS = len(str(MAX_ID))
MAX_PAGE = 200
MAX_CHANGES_PAGE = 500
MAX_CURSOR = 2000
MAX_AUDIT_CURSOR = 200

# -- JSON bodies ----------------------------------------------------------------------------------
# The deepest task body is four levels (task > reminders > [i] > at); 32 leaves room and stops a body
# nested 100,000 deep before the parser recurses into it.
MAX_JSON_DEPTH = 32

# -- tokens ---------------------------------------------------------------------------------------
# A numeric claim (exp, iat, nbf) is an integer or finite number of epoch seconds up to the end of the
# instant range: beyond it (10^400, 1e400) it means nothing and reaches float conversion.
MAX_EPOCH = int(LATEST_INSTANT.timestamp())


def instant_problem(value: datetime) -> str | None:
    """Why an aware date-time is outside the accepted range, or None; compares without arithmetic that
    could leave the calendar (an aware comparison is exact at year 1 and 9999)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return "must carry a UTC offset (Z or +hh:mm)"
    if not EARLIEST_INSTANT <= value < LATEST_INSTANT:
        return (f"a date-time is accepted from {EARLIEST_INSTANT:%Y-%m-%d} to before "
                f"{LATEST_INSTANT:%Y-%m-%d} (UTC)")
    return None


_DATE_TIME = re.compile(DATE_TIME_PATTERN)


def date_time_text_problem(value: Any) -> str | None:
    """Why a value cannot be read as an RFC 3339 date-time string, or None."""
    if not isinstance(value, str):
        return "must be an RFC 3339 date-time string such as 2031-01-01T09:00:00+01:00"
    if len(value) > MAX_DATE_TIME_LENGTH or not _DATE_TIME.match(value):
        return "must be an RFC 3339 date-time such as 2031-01-01T09:00:00+01:00"
    return None


def text_problem(value: str, *, multiline: bool) -> str | None:
    """Why text is refused: what no store keeps (todo.domain.text), or a control character."""
    problem = unstorable(value)
    if problem is not None:
        return problem
    allowed = TEXT_CONTROLS_ALLOWED if multiline else frozenset()
    for char in value:
        if char not in allowed and unicodedata.category(char) == "Cc":
            where = "other than line breaks and tabs " if multiline else ""
            return f"must not contain control characters {where}(found U+{ord(char):04X})"
    return None


@lru_cache(maxsize=1)
def zone_names() -> frozenset[str]:
    """The zone keys of the IANA database here: a folder of it (``America``) is no zone."""
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def zone_problem(name: str) -> str | None:
    if name not in zone_names():
        return f"unknown time zone {name!r}; use an IANA name such as Europe/Paris"
    return None


def int64_problem(value: Any, minimum: int = 0, maximum: int = MAX_ID) -> str | None:
    if type(value) is not int or not minimum <= value <= maximum:
        return f"must be an integer from {minimum} to {maximum}"
    return None


@dataclass(frozen=True)
class Limit:
    what: str
    accepted: str


def _days(value: Any) -> str:
    return f"{value.days} days"


TABLE: tuple[Limit, ...] = (
    Limit("date-time (due_at, reminders' at, snooze until, due_before/due_after, since/until)",
          f"RFC 3339 with an offset, from {EARLIEST_INSTANT:%Y-%m-%dT%H:%MZ} to before "
          f"{LATEST_INSTANT:%Y-%m-%dT%H:%MZ}; integer epochs and dates alone are refused"),
    Limit("duration (reminders' before, snooze for)",
          f"ISO 8601 weeks, days, hours, minutes, seconds (PT15M, P1DT2H, P2W); positive, at most "
          f"{_days(MAX_DURATION)}"),
    Limit("time zone", f"an IANA zone key (Europe/Paris, UTC), at most {MAX_ZONE_NAME} characters; "
                       "not a folder such as America"),
    Limit("title", f"1 to {MAX_TITLE} characters after trimming; no control characters"),
    Limit("description", f"at most {MAX_DESCRIPTION} characters; no control characters but line breaks and tabs"),
    Limit("tags", f"each 1 to {MAX_TAG} characters, no control characters; at most {MAX_TAGS} distinct "
                  f"({MAX_TAGS_GIVEN} given)"),
    Limit("any text", "no NUL character and no lone surrogate (\\ud800): Unicode text every store keeps"),
    Limit("reminders", f"at most {MAX_REMINDERS}"),
    Limit("recurrence rule", f"at most {MAX_RULE_LENGTH} characters, HOURLY or coarser, COUNT up to {MAX_COUNT}, "
                             f"INTERVAL up to {MAX_INTERVAL}; see recurrence.md"),
    Limit("email", f"at most {MAX_EMAIL} characters, one line, local@domain.tld"),
    Limit("task id (path), task_id (query)", f"an integer from 1 to {MAX_ID} (2^63 - 1); other ids are 404"),
    Limit("limit (GET /tasks, /audit, /tasks/{id}/history)", f"1 to {MAX_PAGE}"),
    Limit("since (GET /changes)", f"0 to {MAX_SEQ} (2^62); limit 1 to {MAX_CHANGES_PAGE}"),
    Limit("cursor", f"an opaque token this server issued for the same query, at most {MAX_CURSOR} characters"),
    Limit("JSON body", f"at most 1 MiB (TODO_MAX_BODY_BYTES), nested at most {MAX_JSON_DEPTH} deep"),
    Limit("request head", "at most 16 KiB of request line and headers (431 beyond)"),
    Limit("token claims exp, iat, nbf", f"numbers of epoch seconds up to {MAX_EPOCH}; roles a list of strings"),
)
