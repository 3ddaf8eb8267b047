from __future__ import annotations

import pytest

from todo.domain.recurrence import normalize_rrule


@pytest.mark.parametrize(("given", "canonical"), [
    ("FREQ=DAILY", "FREQ=DAILY"),
    ("rrule:freq=weekly;byday=mo,we", "FREQ=WEEKLY;BYDAY=MO,WE"),
    ("FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYMONTHDAY=31"),
    ("FREQ=DAILY;COUNT=5", "FREQ=DAILY;COUNT=5"),
    ("FREQ=WEEKLY;UNTIL=20270101T000000Z", "FREQ=WEEKLY;UNTIL=20270101T000000Z"),
    ("FREQ=MONTHLY;BYSETPOS=-1;BYDAY=FR", "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=FR"),
])
def test_valid_rules_are_returned_in_canonical_form(given: str, canonical: str) -> None:
    assert normalize_rrule(given) == canonical


@pytest.mark.parametrize(("rule", "reason"), [
    ("", "single RRULE"),
    ("BYDAY=MO", "FREQ is required"),
    ("FREQ=SECONDLY", "not allowed"),
    ("FREQ=MINUTELY", "not allowed"),
    ("FREQ=DAILY;FREQ=WEEKLY", "twice"),
    ("FREQ=DAILY;COUNT=3;UNTIL=20270101T000000Z", "COUNT and UNTIL"),
    ("FREQ=DAILY;COUNT=0", "COUNT"),
    ("FREQ=DAILY;COUNT=100000", "COUNT"),
    ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),  # dateutil would loop (and allocate) forever
    ("FREQ=DAILY;INTERVAL=-2", "INTERVAL"),
    ("FREQ=DAILY;BYHOUR=25", "not a valid RRULE"),
    ("FREQ=DAILY;BYDAY=XX", "not a valid RRULE"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never"),
    ("DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY", "single RRULE"),
    ("FREQ=DAILY;DTSTART=20260101", "not allowed"),
    ("FREQ=DAILY;BYMINUTE=0,1,2", "not allowed"),
    ("FREQ", "malformed"),
])
def test_invalid_rules_are_refused_with_a_reason(rule: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_rrule(rule)
