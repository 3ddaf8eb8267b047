"""Expanding a series: wall-clock time in the task's zone, RFC 5545 month ends, COUNT and UNTIL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule, tz
from hypothesis import given, settings
from hypothesis import strategies as st

from todo.domain.recurrence import Schedule, normalize_rrule

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def series(rule: str, start: datetime, zone: str = "UTC", anchor: str = "schedule", n: int = 6) -> list[datetime]:
    schedule = Schedule(normalize_rrule(rule), anchor, zone, start)  # type: ignore[arg-type]
    out, due = [start], start
    for occurrence in range(1, n):
        nxt = schedule.next_due(occurrence, due, None, LONG_AGO)
        if nxt is None:
            break
        out.append(nxt)
        due = nxt
    return out


def local(values: list[datetime], zone: str) -> list[str]:
    return [v.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") for v in values]


def test_daily_at_nine_new_york_stays_at_nine_across_both_dst_changes() -> None:
    zone = "America/New_York"
    spring = series("FREQ=DAILY", datetime(2026, 3, 7, 14, 0, tzinfo=UTC), zone, n=3)
    assert local(spring, zone) == ["2026-03-07 09:00 EST", "2026-03-08 09:00 EDT", "2026-03-09 09:00 EDT"]
    autumn = series("FREQ=DAILY", datetime(2026, 10, 31, 13, 0, tzinfo=UTC), zone, n=3)
    assert local(autumn, zone) == ["2026-10-31 09:00 EDT", "2026-11-01 09:00 EST", "2026-11-02 09:00 EST"]


def test_a_time_in_the_spring_gap_takes_the_offset_before_the_gap() -> None:
    zone = "America/New_York"  # 2026-03-08 02:30 does not exist there
    got = series("FREQ=DAILY", datetime(2026, 3, 7, 7, 30, tzinfo=UTC), zone, n=3)
    assert local(got, zone) == ["2026-03-07 02:30 EST", "2026-03-08 03:30 EDT", "2026-03-09 02:30 EDT"]


def test_monthly_on_31st_skips_short_months() -> None:
    got = series("FREQ=MONTHLY;BYMONTHDAY=31", datetime(2026, 1, 31, 9, tzinfo=UTC), n=4)
    assert [d.date().isoformat() for d in got] == ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31"]


def test_bymonthday_minus_one_is_the_last_day_of_each_month() -> None:
    got = series("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2026, 1, 31, 9, tzinfo=UTC), n=4)
    assert [d.date().isoformat() for d in got] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]


def test_count_counts_the_instances_generated() -> None:
    assert len(series("FREQ=WEEKLY;COUNT=3", datetime(2026, 1, 5, 9, tzinfo=UTC), n=10)) == 3


def test_until_ends_the_series_at_an_instant() -> None:
    got = series("FREQ=DAILY;UNTIL=20260103T090000Z", datetime(2026, 1, 1, 9, tzinfo=UTC), n=10)
    assert [d.day for d in got] == [1, 2, 3]


def test_schedule_anchor_skips_to_the_first_occurrence_after_now() -> None:
    schedule = Schedule("FREQ=DAILY", "schedule", "UTC", datetime(2026, 1, 1, 9, tzinfo=UTC))
    now = datetime(2026, 2, 10, 12, tzinfo=UTC)  # six weeks overdue
    assert schedule.next_due(1, schedule.dtstart, now, now) == datetime(2026, 2, 11, 9, tzinfo=UTC)


def test_completing_early_moves_to_the_next_occurrence_not_today() -> None:
    schedule = Schedule("FREQ=WEEKLY", "schedule", "UTC", datetime(2026, 1, 5, 9, tzinfo=UTC))
    early = datetime(2026, 1, 3, 12, tzinfo=UTC)
    assert schedule.next_due(1, schedule.dtstart, early, early) == datetime(2026, 1, 12, 9, tzinfo=UTC)


def test_completion_anchor_counts_from_the_completion_day_keeping_the_time_of_day() -> None:
    schedule = Schedule("FREQ=DAILY;INTERVAL=3", "completion", "Europe/Paris",
                        datetime(2026, 1, 1, 8, tzinfo=UTC))  # 09:00 in Paris
    done = datetime(2026, 1, 10, 16, 30, tzinfo=UTC)
    assert schedule.next_due(1, schedule.dtstart, done, done) == datetime(2026, 1, 13, 8, tzinfo=UTC)


ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "America/Sao_Paulo", "UTC"]
RULES = ["FREQ=DAILY", "FREQ=DAILY;INTERVAL=2", "FREQ=WEEKLY;BYDAY=MO,TH", "FREQ=MONTHLY;BYMONTHDAY=31",
         "FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=MONTHLY;BYDAY=-1FR", "FREQ=YEARLY", "FREQ=HOURLY;INTERVAL=7"]


@settings(max_examples=150, deadline=None)
@given(zone=st.sampled_from(ZONES), rule=st.sampled_from(RULES),
       # dateutil's tzfile reads only the explicit transitions, which end in 2037: stay before that.
       start=st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2025, 6, 30)))
def test_series_equal_dateutils_own_expansion_in_the_zone(zone: str, rule: str, start: datetime) -> None:
    """dateutil's tz-aware expansion (its own zone database) as the oracle, away from DST gaps/folds."""
    dateutil_zone = tz.gettz(zone)
    local_start = start.replace(second=0, microsecond=0)
    if not tz.datetime_exists(local_start, dateutil_zone) or tz.datetime_ambiguous(local_start, dateutil_zone):
        return
    oracle_start = local_start.replace(tzinfo=dateutil_zone)
    oracle = [d for d in rrule.rrulestr(rule, dtstart=oracle_start)[:12]
              if tz.datetime_exists(d.replace(tzinfo=None), dateutil_zone)
              and not tz.datetime_ambiguous(d.replace(tzinfo=None), dateutil_zone)]
    ours = series(rule, oracle_start.astimezone(UTC), zone, n=12)
    ours_clean = [d for d in ours if d.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
                  in {o.replace(tzinfo=None) for o in oracle}]
    assert [d.astimezone(UTC) for d in oracle][: len(ours_clean)] == ours_clean[: len(oracle)]
    assert len(ours) == 12


@pytest.mark.parametrize("zone", ZONES)
def test_daily_series_keep_their_wall_clock_time_for_two_years(zone: str) -> None:
    start = datetime(2026, 1, 1, 9, 15, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    got = series("FREQ=DAILY", start, zone, n=730)
    assert {d.astimezone(ZoneInfo(zone)).strftime("%H:%M") for d in got} == {"09:15"}
    assert all(b - a in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
               for a, b in itertools.pairwise(got))
