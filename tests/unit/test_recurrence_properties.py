"""Properties of rule evaluation for arbitrary rules and dates: it never raises anything but validation's
ValueError, it stays within its cap, and re-anchoring changes no date (dateutil, expanding from the
series' start, is the oracle)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil import rrule
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from todo.domain.expansion import MAX_CANDIDATES, Budget, first_after
from todo.domain.recurrence import EARLIEST_DUE, LATEST_DUE, Recurrence, Schedule, check_series, normalize_rrule
from todo.domain.rules import parse_rule

FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Kiritimati",
         "America/St_Johns", "Pacific/Pago_Pago", "America/Sao_Paulo"]


def signed(low: int, high: int) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["", "+", "-"]), st.integers(low, high)).map(
        lambda t: f"{'-' if t[0] == '-' else t[0]}{t[1]}")


def comma(values: st.SearchStrategy[str], most: int = 4) -> st.SearchStrategy[str]:
    return st.lists(values, min_size=1, max_size=most).map(",".join)


weekday = st.tuples(st.one_of(st.just(""), signed(1, 5), signed(1, 53)), st.sampled_from(WEEKDAYS)).map("".join)
PARTS: dict[str, st.SearchStrategy[str]] = {
    "INTERVAL": st.one_of(st.integers(1, 13), st.integers(1, 1000)).map(str),
    "COUNT": st.integers(1, 1000).map(str),
    "UNTIL": st.datetimes(min_value=datetime(1899, 1, 1), max_value=datetime(3100, 1, 1)).flatmap(
        lambda d: st.sampled_from([d.strftime("%Y%m%dT%H%M%SZ"), d.strftime("%Y%m%dT%H%M%S"), d.strftime("%Y%m%d")])),
    "WKST": st.sampled_from(WEEKDAYS),
    "BYMONTH": comma(st.integers(1, 12).map(str)),
    "BYMONTHDAY": comma(signed(1, 31)),
    "BYYEARDAY": comma(signed(1, 366)),
    "BYWEEKNO": comma(signed(1, 53)),
    "BYDAY": comma(weekday),
    "BYHOUR": comma(st.integers(0, 23).map(str)),
    "BYSETPOS": comma(st.one_of(signed(1, 5), signed(1, 366)), most=3),
}


@st.composite
def rules(draw: st.DrawFn, parts: tuple[str, ...] = tuple(PARTS)) -> str:
    """A rule of RFC 5545's parts with values in their ranges (COUNT and UNTIL never together)."""
    chosen = {"FREQ": draw(st.sampled_from(FREQS))}
    for name in draw(st.lists(st.sampled_from(parts), unique=True, max_size=5)):
        if not ((name == "COUNT" and "UNTIL" in chosen) or (name == "UNTIL" and "COUNT" in chosen)):
            chosen[name] = draw(PARTS[name])
    return ";".join(f"{k}={v}" for k, v in chosen.items())


garbage_value = st.one_of(st.text(max_size=8), st.integers(-10**30, 10**30).map(str), st.just(""),
                          st.just("0"), st.just("+0MO"), st.just("99991231T999999Z"))
raw_rules = st.one_of(
    st.text(max_size=60),
    rules(),
    st.tuples(rules(), st.sampled_from([*PARTS, "FREQ", "BYMINUTE", "BYEASTER", "X-NAME", "DTSTART", ""]),
              garbage_value).map(lambda t: f"{t[0]};{t[1]}={t[2]}"),
)
# Any instant the models accept (an aware date-time, any year), as event data and old rows may carry.
any_instant = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                           timezones=st.sampled_from([ZoneInfo(z) for z in ZONES])).map(
    lambda d: d.astimezone(UTC) if 2 <= d.year <= 9998 else d.replace(tzinfo=UTC))
due_in_range = st.datetimes(min_value=EARLIEST_DUE.replace(tzinfo=None), max_value=datetime(2999, 12, 31),
                            timezones=st.just(UTC))

BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@BOUNDED
@given(rule=raw_rules, zone=st.sampled_from(ZONES), due=st.one_of(due_in_range, any_instant))
@example(rule="FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1;COUNT=1", zone="UTC",
         due=datetime(2026, 1, 1, tzinfo=UTC))
@example(rule="FREQ=DAILY", zone="America/New_York", due=datetime(1, 1, 1, tzinfo=UTC))
@example(rule="FREQ=DAILY", zone="America/New_York", due=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))
def test_validation_refuses_with_value_error_only(rule: str, zone: str, due: datetime) -> None:
    try:
        canonical = normalize_rrule(rule)
    except ValueError:
        return
    assert parse_rule(canonical).freq in range(5)
    errors = check_series(Recurrence(canonical), zone, due)
    assert all(e.field in ("recurrence.rrule", "due_at") for e in errors)
    if not EARLIEST_DUE <= due < LATEST_DUE:
        assert [e.field for e in errors] == ["due_at"]


@BOUNDED
@given(rule=rules(), zone=st.sampled_from(ZONES), anchor=st.sampled_from(["schedule", "completion"]),
       start=st.one_of(due_in_range, any_instant), due=st.one_of(st.none(), due_in_range, any_instant),
       completed=st.one_of(st.none(), due_in_range, any_instant), now=st.one_of(due_in_range, any_instant),
       occurrence=st.integers(1, 1200))
@example(rule="FREQ=DAILY", zone="America/New_York", anchor="schedule", start=datetime(1, 1, 1, tzinfo=UTC),
         due=None, completed=None, now=datetime(2026, 1, 1, tzinfo=UTC), occurrence=1)
@example(rule="FREQ=HOURLY", zone="Pacific/Kiritimati", anchor="schedule", start=datetime(2999, 12, 31, tzinfo=UTC),
         due=None, completed=None, now=datetime(2999, 12, 31, 23, tzinfo=UTC), occurrence=1)
@example(rule="FREQ=DAILY", zone="America/New_York", anchor="completion", start=datetime(2026, 1, 1, tzinfo=UTC),
         due=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
         completed=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
         now=datetime(2026, 1, 1, tzinfo=UTC), occurrence=1)
def test_next_instance_never_raises_and_stays_within_the_cap(
        rule: str, zone: str, anchor: str, start: datetime, due: datetime | None, completed: datetime | None,
        now: datetime, occurrence: int) -> None:
    """Whatever is stored or arrives in an event: an instance within the accepted range, or an ending."""
    schedule = Schedule(rule, anchor, zone, start)  # type: ignore[arg-type]
    outcome = schedule.next_instance(occurrence, due, completed, now)
    assert outcome.examined <= MAX_CANDIDATES
    if outcome.due is None:
        assert outcome.ending is not None and outcome.ending != "over_budget"
    else:
        assert EARLIEST_DUE <= outcome.due < LATEST_DUE and outcome.ending is None


def dateutil_after(rule: str, dtstart: datetime, after: datetime) -> datetime | None:
    return rrule.rrulestr(rule, dtstart=dtstart).after(after)  # type: ignore[no-any-return]


# The oracle: the same rule without COUNT and UNTIL (the schedule applies those itself), dates in UTC
# (no daylight saving: the wall clock is the instant), the floor up to three years past the start.
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(rule=rules(tuple(p for p in PARTS if p not in ("COUNT", "UNTIL"))),
       start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2023, 12, 31)),
       ahead=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3 * 366)))
@example(rule="FREQ=HOURLY;INTERVAL=7", start=datetime(2016, 3, 1, 5, 30), ahead=timedelta(days=3650))
@example(rule="FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;BYSETPOS=1", start=datetime(2021, 6, 9, 8), ahead=timedelta(days=800))
@example(rule="FREQ=MONTHLY;INTERVAL=5;BYDAY=-1FR", start=datetime(2020, 2, 3, 9), ahead=timedelta(days=1000))
@example(rule="FREQ=YEARLY;INTERVAL=3;BYWEEKNO=1,53;BYDAY=MO", start=datetime(2020, 12, 28), ahead=timedelta(days=900))
def test_the_re_anchored_next_due_equals_the_expansion_from_the_start(rule: str, start: datetime,
                                                                     ahead: timedelta) -> None:
    start = start.replace(microsecond=0)
    floor = start + ahead
    schedule = Schedule(rule, "schedule", "UTC", start.replace(tzinfo=UTC))
    ours = schedule.next_due(1, floor.replace(tzinfo=UTC), None, datetime(2000, 1, 1, tzinfo=UTC))
    assume(ours is not None)  # dateutil would search to the year 9999 for a rule that never occurs: see below
    try:
        theirs = dateutil_after(rule, start, floor)
    except IndexError:  # dateutil's tables end before some ordinals (BYDAY=8MO in a late month): it crashes
        assume(False)
    assert theirs is not None and ours == theirs.replace(tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(rule=rules(tuple(p for p in PARTS if p not in ("COUNT", "UNTIL"))),
       start=st.datetimes(min_value=datetime(9992, 1, 1), max_value=datetime(9997, 12, 31)),
       ahead=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2 * 366)))
def test_a_rule_that_finds_nothing_agrees_with_the_expansion_from_the_start(rule: str, start: datetime,
                                                                           ahead: timedelta) -> None:
    """Near the end of the calendar dateutil's search ends quickly, so "none" can be compared too."""
    start = start.replace(microsecond=0)
    floor = start + ahead
    try:
        theirs = dateutil_after(rule, start, floor)
    except ValueError:  # dateutil refuses HOURLY;BYHOUR values off the series' grid: none occurs
        theirs = None
    except (IndexError, OverflowError):  # its tables and weeks run past its own bounds there
        assume(False)
    ours = first_after(parse_rule(rule), start, floor, datetime.max, Budget(candidates=10**7, seconds=60))
    assert ours.stop in ("found", "exhausted")
    assert ours.value == theirs


def test_no_rule_can_make_an_evaluation_examine_more_than_the_cap() -> None:
    budget = Budget()
    found = first_after(parse_rule("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1"), datetime(2026, 1, 1),
                        datetime(2026, 1, 1), datetime(9999, 1, 1), budget)
    assert (found.value, found.stop) == (None, "capped")
    assert budget.examined <= MAX_CANDIDATES
