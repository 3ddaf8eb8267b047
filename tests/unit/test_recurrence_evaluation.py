"""Evaluating a rule costs the same however old its series is, keeps the rule's phase, is capped, and
ends a series rather than failing; what cannot work is refused before anything is stored."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from todo.domain.expansion import MAX_CANDIDATES, Budget, first_after
from todo.domain.recurrence import LATEST_DUE, Recurrence, Schedule, check_series, normalize_rrule
from todo.domain.rules import parse_rule

NOW = datetime(2026, 5, 6, 12, 34, 56, tzinfo=UTC)


def next_after_now(rule: str, dtstart: datetime, zone: str = "UTC") -> tuple[datetime | None, int]:
    outcome = Schedule(normalize_rrule(rule), "schedule", zone, dtstart).next_instance(1, dtstart, NOW, NOW)
    return outcome.due, outcome.examined


def test_a_ten_year_old_hourly_series_examines_no_more_than_a_new_one() -> None:
    _, new = next_after_now("FREQ=HOURLY", NOW - timedelta(hours=2))
    _, old = next_after_now("FREQ=HOURLY", NOW - timedelta(days=3652, hours=2))
    assert old == new <= 2 * 16  # a year's tables and an instant or two


@pytest.mark.parametrize(("rule", "start", "step"), [
    ("FREQ=HOURLY;INTERVAL=7", datetime(2016, 3, 1, 5, 30, tzinfo=UTC), timedelta(hours=7)),
    ("FREQ=DAILY;INTERVAL=3", datetime(2016, 3, 1, 5, 30, tzinfo=UTC), timedelta(days=3)),
    ("FREQ=WEEKLY;INTERVAL=2", datetime(2016, 3, 1, 5, 30, tzinfo=UTC), timedelta(weeks=2)),
])
def test_an_interval_keeps_its_grid_from_the_first_instance_after_ten_years(
        rule: str, start: datetime, step: timedelta) -> None:
    due, _ = next_after_now(rule, start)
    assert due is not None and NOW < due <= NOW + step
    assert (due - start) % step == timedelta(0)


def test_every_fifth_month_and_every_third_year_keep_their_phase() -> None:
    monthly, _ = next_after_now("FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=-1", datetime(2019, 1, 31, 9, tzinfo=UTC))
    assert monthly == datetime(2026, 7, 31, 9, tzinfo=UTC)  # Jan 2019 + 5k months: ..., Feb 2026, Jul 2026
    yearly, _ = next_after_now("FREQ=YEARLY;INTERVAL=3;BYMONTH=2;BYDAY=-1MO", datetime(2011, 2, 28, 9, tzinfo=UTC))
    assert yearly == datetime(2029, 2, 26, 9, tzinfo=UTC)  # 2011 + 3k: 2026 is past (February), so 2029


def test_bysetpos_picks_within_each_period_of_a_re_anchored_series() -> None:
    # The last workday of every other month, from January 2020: Nov 2025 was one, Jan 2026, Mar, May 2026.
    due, _ = next_after_now("FREQ=MONTHLY;INTERVAL=2;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
                            datetime(2020, 1, 31, 17, tzinfo=UTC))
    assert due == datetime(2026, 5, 29, 17, tzinfo=UTC)


def test_a_re_anchored_daily_series_keeps_the_wall_clock_time_across_dst() -> None:
    start = datetime(2016, 1, 4, 14, tzinfo=UTC)  # 09:00 in New York, ten years ago
    due, _ = next_after_now("FREQ=DAILY", start, "America/New_York")
    assert due == datetime(2026, 5, 6, 13, tzinfo=UTC)  # 09:00 EDT, that morning


def test_count_ends_the_series_at_its_occurrence_number_without_expanding() -> None:
    schedule = Schedule("FREQ=HOURLY;COUNT=1000", "schedule", "UTC", datetime(2016, 1, 1, tzinfo=UTC))
    ended = schedule.next_instance(1000, NOW, NOW, NOW)
    assert (ended.due, ended.ending, ended.examined) == (None, "count", 0)
    assert schedule.next_instance(999, NOW, NOW, NOW).due == datetime(2026, 5, 6, 13, tzinfo=UTC)


def test_a_series_due_in_year_one_ends_instead_of_overflowing() -> None:
    schedule = Schedule("FREQ=DAILY", "schedule", "America/New_York", datetime(1, 1, 1, tzinfo=UTC))
    assert schedule.next_instance(1, schedule.dtstart, NOW, NOW).ending == "out_of_range"
    hourly = Schedule("FREQ=HOURLY", "completion", "Pacific/Kiritimati", datetime(2026, 1, 1, tzinfo=UTC))
    assert hourly.next_instance(1, datetime(9999, 12, 31, 23, tzinfo=UTC), None, NOW).ending == "out_of_range"


def test_a_series_at_the_end_of_the_accepted_range_ends() -> None:
    schedule = Schedule("FREQ=YEARLY", "schedule", "Pacific/Kiritimati", datetime(2999, 6, 1, tzinfo=UTC))
    late = datetime(2999, 12, 31, tzinfo=UTC)
    outcome = schedule.next_instance(1, schedule.dtstart, late, late)
    assert (outcome.due, outcome.ending) == (None, "exhausted")
    assert LATEST_DUE.year == 3000


def test_a_stored_rule_the_parser_no_longer_takes_ends_the_series() -> None:
    # dateutil took BYEASTER and BYDAY=TH(+1); neither is RFC 5545, and neither is accepted any more.
    for rule in ("FREQ=YEARLY;BYEASTER=0", "FREQ=MONTHLY;BYDAY=TH(+1)", "FREQ=DAILY;UNTIL=2027-01-01"):
        schedule = Schedule(rule, "schedule", "UTC", datetime(2026, 1, 1, tzinfo=UTC))
        assert schedule.next_instance(1, schedule.dtstart, NOW, NOW).ending == "invalid"


def test_an_evaluation_out_of_time_says_so_rather_than_ending_the_series() -> None:
    ticks = itertools.count(step=1.0)  # every look at the clock: a second later
    budget = Budget(seconds=0.5, clock=lambda: next(ticks))
    found = first_after(parse_rule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29"), datetime(2025, 3, 1), datetime(2025, 3, 1),
                        datetime(2999, 1, 1), budget)
    assert (found.value, found.stop) == (None, "over_budget")
    schedule = Schedule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", "schedule", "UTC", datetime(2024, 2, 29, tzinfo=UTC))
    ticks = itertools.count(step=1.0)
    assert schedule.next_instance(1, None, None, NOW, Budget(seconds=0.5, clock=lambda: next(ticks))).ending == (
        "over_budget")


@pytest.mark.parametrize("rule", [
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1;COUNT=1",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYYEARDAY=" + ",".join(str(d) for d in range(1, 60)) + ";BYMONTH=12",
    "FREQ=YEARLY;BYYEARDAY=" + ",".join(str(-d) for d in range(1, 40)) + ";BYSETPOS=" + ",".join(
        str(p) for p in range(40, 100)),
    "FREQ=MONTHLY;BYDAY=8MO",  # dateutil crashed on this one (IndexError), at the edge: a 500
    "FREQ=HOURLY;BYSETPOS=2",  # an hour holds one instant
    "FREQ=WEEKLY;BYWEEKNO=1;BYMONTH=6",
])
def test_rules_that_never_occur_are_refused_within_the_cap(rule: str) -> None:
    with pytest.raises(ValueError, match="never produces an occurrence"):
        normalize_rrule(rule)
    budget = Budget()
    assert first_after(parse_rule(rule), datetime(2026, 1, 1), datetime(2026, 1, 1), datetime(2999, 1, 1),
                       budget).value is None
    assert budget.examined <= MAX_CANDIDATES


@pytest.mark.parametrize(("rule", "reason"), [
    ("FREQ=YEARLY;BYEASTER=0", "unknown rule part BYEASTER"),
    ("FREQ=DAILY;X-NAME=1", "unknown rule part"),
    ("FREQ=DAILY;UNTIL=2027-01-01", "UNTIL must be"),  # dateutil's parser took it; the expansion then crashed
    ("FREQ=DAILY;UNTIL=20270230", "UNTIL must be"),
    ("FREQ=MONTHLY;BYDAY=0MO", "ordinal"),
    ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY"),
    ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO"),
    ("FREQ=DAILY;BYSETPOS=367", "BYSETPOS"),
    ("FREQ=DAILY;INTERVAL=²", "INTERVAL"),
    ("FREQ=WEEKLY;WKST=XX", "WKST"),
    ("FREQ=DAILY;BYHOUR=1," + ",".join(["2"] * 300), "at most 500 characters"),
])
def test_parts_outside_rfc_5545_or_their_ranges_are_refused(rule: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_rrule(rule)


def errors(rule: str, due: datetime, zone: str = "UTC") -> list[tuple[str, str]]:
    return [(e.field, e.message) for e in check_series(Recurrence(normalize_rrule(rule)), zone, due)]


def test_until_before_the_due_date_is_refused() -> None:
    [(field, message)] = errors("FREQ=DAILY;UNTIL=20260101T000000Z", datetime(2026, 3, 1, 9, tzinfo=UTC))
    assert field == "recurrence.rrule" and "UNTIL is before the due date" in message
    assert errors("FREQ=DAILY;UNTIL=20260301", datetime(2026, 3, 1, 9, tzinfo=UTC)) == []  # that day, in its zone


def test_a_rule_that_cannot_occur_from_its_due_date_is_refused() -> None:
    # MONTHLY takes its day from the due date: there is no 30 February.
    [(field, message)] = errors("FREQ=MONTHLY;BYMONTH=2", datetime(2026, 1, 30, 9, tzinfo=UTC))
    assert field == "recurrence.rrule" and "no occurrence after the due date" in message
    assert errors("FREQ=MONTHLY;BYMONTH=2", datetime(2026, 1, 28, 9, tzinfo=UTC)) == []


def test_an_hourly_rule_off_its_grid_is_refused_for_that_due_date_only() -> None:
    # Every other hour from 10:00 never reaches 03:00 (dateutil raised on it in the consumer); from 09:00 it does.
    assert errors("FREQ=HOURLY;INTERVAL=2;BYHOUR=3", datetime(2026, 3, 1, 10, tzinfo=UTC))
    assert errors("FREQ=HOURLY;INTERVAL=2;BYHOUR=3", datetime(2026, 3, 1, 9, tzinfo=UTC)) == []


@pytest.mark.parametrize("due", [datetime(1, 1, 1, tzinfo=UTC), datetime(1899, 12, 31, 23, tzinfo=UTC),
                                 datetime(3000, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)])
def test_a_recurring_task_is_due_within_the_accepted_range(due: datetime) -> None:
    [(field, message)] = errors("FREQ=DAILY", due, "America/New_York")
    assert field == "due_at" and "1900-01-01" in message and "3000-01-01" in message


def test_a_rare_rule_is_accepted_when_it_occurs_within_the_cap() -> None:
    assert normalize_rrule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29") == "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29"
    assert errors("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29", datetime(2097, 3, 1, tzinfo=UTC)) == []  # next: 2104
