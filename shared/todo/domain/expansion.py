"""The first occurrence of a rule after a given wall-clock time, at a bounded cost.

A series used to be expanded by dateutil from its first due date onwards: a ten-year-old hourly series
walked 87,600 candidates for each new instance, and a rule that never occurs (30 February, hourly)
walked to the year 9999 before giving up. Here the expansion starts at the period that holds the
floor, and everything it looks at is counted against a :class:`Budget`.

Re-anchoring keeps the rule's meaning because RFC 5545 expands period by period: the periods are the
years, months, weeks (starting on WKST), days or hours of the series' first instance, every INTERVAL-th
one; BYSETPOS picks within a period. The period that holds the floor is found by arithmetic on that grid,
so phase is kept (``FREQ=HOURLY;INTERVAL=7`` stays on its 7-hour grid), and the parts a rule leaves out
come from the series' start (the time of day; the weekday of WEEKLY, the day of MONTHLY, the day and
month of YEARLY), not from the period it restarts at. COUNT is not expanded at all: the occurrence number
of an instance is known (:mod:`todo.domain.recurrence`).

The semantics are those of python-dateutil 2.9 (``dateutil.rrule``), which the project expanded with
before; the tests compare the two. Where dateutil departs from the letter of RFC 5545 this does too,
so that no stored series changes its dates: a weekly series' first week starts at its first instance
(BYSETPOS counts from there), plain and ordinal BYDAY values in one MONTHLY or YEARLY rule must both
hold, and the week-number tables are dateutil's.

All times here are naive: wall-clock time in the series' zone (:mod:`todo.domain.recurrence` converts).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from math import gcd
from typing import Literal

from .rules import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, Rule

# What one evaluation may examine: a day tested against the rule's BY* filters, an instant built, or a
# BYSETPOS position taken count one each (well under a microsecond each); the tables of a year or a month
# count what building them costs, in the same unit. Ten thousand covers about 27 years of day-by-day
# search (a rule on 29 February gaps 8 years at most) and costs a few ms of CPU (python -m bench r1).
MAX_CANDIDATES = 10_000
# A backstop: the candidate cap already bounds the work well below it. It is the thread's CPU time, not
# the wall clock: on a busy machine a search can wait for a core far longer than it works, and an
# outcome that depended on the neighbours' load would not be one a retry could rely on.
TIME_BUDGET_SECONDS = 0.5
_TABLE_COST = 16  # a year's tables, and a month's ordinal-weekday table, plus what their BY* lists add
_CLOCK_EVERY = 512  # candidates between two looks at the clock

Stop = Literal["found", "exhausted", "capped", "over_budget"]
"""How a search ended: ``exhausted`` — no occurrence before the limit (or the end of the calendar);
``capped`` — the candidate cap was reached; ``over_budget`` — the time budget was."""


class _Halt(Exception):
    def __init__(self, stop: Stop) -> None:
        self.stop: Stop = stop


@dataclass
class Budget:
    """The cap of one evaluation. ``examined`` says what it cost."""

    candidates: int = MAX_CANDIDATES
    seconds: float = TIME_BUDGET_SECONDS
    clock: Callable[[], float] = time.thread_time
    examined: int = 0
    _deadline: float = field(default=0.0, repr=False)
    _next_look: int = field(default=_CLOCK_EVERY, repr=False)

    def start(self) -> None:
        self._deadline = self.clock() + self.seconds
        self._next_look = self.examined + _CLOCK_EVERY

    def spend(self, n: int = 1) -> None:
        if self.examined + n > self.candidates:
            raise _Halt("capped")
        self.examined += n
        if self.examined >= self._next_look:
            self._next_look = self.examined + _CLOCK_EVERY
            if self.clock() > self._deadline:
                raise _Halt("over_budget")


@dataclass(frozen=True)
class Found:
    value: datetime | None
    stop: Stop
    examined: int


def first_after(rule: Rule, dtstart: datetime, after: datetime, limit: datetime,
                budget: Budget | None = None) -> Found:
    """The first occurrence of ``rule`` (COUNT and UNTIL aside) of the series starting at ``dtstart``
    that is later than ``after`` and earlier than ``limit``; all three are wall-clock times."""
    budget = budget or Budget()
    budget.start()
    try:
        value = _Search(rule, dtstart.replace(microsecond=0), after, limit, budget).run()
    except _Halt as halt:
        return Found(None, halt.stop, budget.examined)
    return Found(value, "found" if value is not None else "exhausted", budget.examined)


# -- the calendar tables of one year (dateutil's _iterinfo) ----------------------------------------------
# A day is an index into its year (0 = 1 January); each table runs 7 days into the next year, because a
# week that starts in late December is looked up in the year it starts in.


def _month_tables(leap: bool) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    lengths = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    month: list[int] = []
    mday: list[int] = []
    nmday: list[int] = []
    starts = [0]
    for number, length in enumerate(lengths, start=1):
        month += [number] * length
        mday += range(1, length + 1)
        nmday += range(-length, 0)
        starts.append(starts[-1] + length)
    return (tuple(month + [1] * 7), tuple(mday + list(range(1, 8))), tuple(nmday + list(range(-31, -24))),
            tuple(starts))


_TABLES = {False: _month_tables(False), True: _month_tables(True)}
_MAX_ORDINAL = date.max.toordinal()


class _Year:
    """What filtering a day of ``year`` needs."""

    def __init__(self, rule: Rule, year: int) -> None:
        leap = calendar.isleap(year)
        self.year = year
        self.length = 365 + leap
        self.next_length = 365 + calendar.isleap(year + 1)
        self.ordinal = date(year, 1, 1).toordinal()
        self.weekday = date(year, 1, 1).weekday()
        self.month, self.mday, self.nmday, self.month_starts = _TABLES[leap]
        self.weekno = _weekno_table(rule, year, self.length, self.weekday) if rule.byweekno else None

    def weekday_of(self, i: int) -> int:
        return (self.weekday + i) % 7


def _weekno_table(rule: Rule, year: int, length: int, weekday: int) -> list[bool]:
    """The days of ``year`` (and 7 into the next) in a week BYWEEKNO names (dateutil's wnomask)."""
    wkst, numbers = rule.wkst, rule.byweekno
    table = [False] * (length + 7)

    def mark_week(i: int) -> None:
        for _ in range(7):
            if i >= len(table):
                return
            table[i] = True
            i += 1
            if (weekday + i) % 7 == wkst:
                return

    no1wkst = firstwkst = (7 - weekday + wkst) % 7
    if no1wkst >= 4:
        no1wkst = 0
        wyearlen = length + (weekday - wkst) % 7  # the year plus the days of week 1 before it
    else:
        wyearlen = length - no1wkst
    div, mod = divmod(wyearlen, 7)
    numweeks = div + mod // 4
    for n in numbers:
        if n < 0:
            n += numweeks + 1
        if not 0 < n <= numweeks:
            continue
        i = no1wkst + (n - 1) * 7 - (7 - firstwkst if n > 1 and no1wkst != firstwkst else 0)
        mark_week(i)
    if 1 in numbers:  # week 1 of the next year may start in this one
        i = no1wkst + numweeks * 7 - (7 - firstwkst if no1wkst != firstwkst else 0)
        if i < length:
            mark_week(i)
    if no1wkst:  # the first days belong to the last week of the year before
        if -1 in numbers:
            last_numweeks = -1
        else:
            last_weekday = (weekday - (365 + calendar.isleap(year - 1))) % 7
            last_no1wkst = (7 - last_weekday + wkst) % 7
            last_length = 365 + calendar.isleap(year - 1)
            if last_no1wkst >= 4:
                last_numweeks = 52 + (last_length + (last_weekday - wkst) % 7) % 7 // 4
            else:
                last_numweeks = 52 + (length - no1wkst) % 7 // 4
        if last_numweeks in numbers:
            for i in range(no1wkst):
                table[i] = True
    return table


# -- the search --------------------------------------------------------------------------------------------


class _Search:
    def __init__(self, rule: Rule, dtstart: datetime, after: datetime, limit: datetime, budget: Budget) -> None:
        self.rule = rule
        self.dtstart = dtstart
        # An occurrence is never before dtstart: searching after the instant before it says so once.
        self.after = max(after, dtstart - timedelta(microseconds=1)) if dtstart > datetime.min else after
        self.limit = limit
        self.budget = budget
        self.years: dict[int, _Year] = {}
        self.nth: dict[tuple[int, int], list[bool]] = {}
        minute, second = dtstart.minute, dtstart.second
        hours = sorted(rule.byhour) if rule.byhour else [dtstart.hour]
        self.times = [(h, minute, second) for h in hours]  # the time set of DAILY and coarser
        self.monthday, self.weekday, self.month = _defaults(rule, dtstart)
        positive = frozenset(d for d in self.monthday if d > 0)
        self.any_monthday = bool(self.monthday)
        self.pos_monthday, self.neg_monthday = positive, self.monthday - positive
        # HOURLY: the hours a series on its grid can reach at all (dateutil's _construct_byset).
        step = gcd(rule.interval, 24)
        self.reachable = frozenset(h for h in rule.byhour if (h - dtstart.hour) % step == 0)

    def run(self) -> datetime | None:
        if self.after >= self.limit:
            return None
        search = {YEARLY: self._yearly, MONTHLY: self._monthly, WEEKLY: self._weekly, DAILY: self._daily,
                  HOURLY: self._hourly}[self.rule.freq]
        return search()

    # The tables of a year, built once per search.
    def _year(self, year: int) -> _Year:
        found = self.years.get(year)
        if found is None:
            self.budget.spend(_TABLE_COST + 3 * len(self.rule.byweekno))
            found = self.years[year] = _Year(self.rule, year)
        return found

    def _year_of(self, ordinal: int, current: _Year | None) -> _Year:
        """The tables of the year holding day ``ordinal``: ``current``'s when it does (a day-by-day
        search stays in one year for a long while)."""
        if current is not None and 0 <= ordinal - current.ordinal < current.length:
            return current
        return self._year(date.fromordinal(ordinal).year)

    def _keeps(self, info: _Year, i: int, nth: list[bool] | None) -> bool:
        """dateutil's day filter: every BY* part the rule has must hold for day ``i``."""
        r = self.rule
        if self.month and info.month[i] not in self.month:
            return False
        if info.weekno is not None and not info.weekno[i]:
            return False
        if self.weekday and info.weekday_of(i) not in self.weekday:
            return False
        if nth is not None and not nth[i]:
            return False
        if self.any_monthday and info.mday[i] not in self.pos_monthday and info.nmday[i] not in self.neg_monthday:
            return False
        if r.byyearday:
            if i < info.length:
                return i + 1 in r.byyearday or i - info.length in r.byyearday
            return i + 1 - info.length in r.byyearday or i - info.length - info.next_length in r.byyearday
        return True

    def _nth_table(self, info: _Year, month: int | None) -> list[bool] | None:
        """The days an ordinal BYDAY (``1MO``, ``-1FR``) selects: within each month of a MONTHLY rule,
        within the year (or each BYMONTH month) of a YEARLY one (dateutil's nwdaymask)."""
        r = self.rule
        if not r.bynweekday:
            return None
        key = (info.year, month or 0)
        table = self.nth.get(key)
        if table is not None:
            return table
        starts = info.month_starts
        if month is not None:
            ranges = [(starts[month - 1], starts[month])]
        elif r.bymonth:
            ranges = [(starts[m - 1], starts[m]) for m in sorted(r.bymonth)]
        else:
            ranges = [(0, info.length)]
        self.budget.spend(_TABLE_COST + len(ranges) * len(r.bynweekday))
        table = [False] * (info.length + 7)
        for first, end in ranges:
            last = end - 1
            for wday, n in r.bynweekday:
                if n < 0:
                    i = last + (n + 1) * 7
                    i -= (info.weekday_of(i) - wday) % 7
                else:
                    i = first + (n - 1) * 7
                    i += (7 - info.weekday_of(i) + wday) % 7
                if first <= i <= last:
                    table[i] = True
        self.nth[key] = table
        return table

    def _period(self, info: _Year, days: range, nth: list[bool] | None) -> datetime | None:
        """The first wanted occurrence among the days ``days`` (indices into ``info``'s year) of one
        period of a YEARLY, MONTHLY or WEEKLY rule, or None."""
        r = self.rule
        base = info.ordinal
        if not r.bysetpos:
            # Without BYSETPOS the days before the floor's cannot matter: skip them unexamined.
            skip = self.after.toordinal() - base
            if skip > days.start:
                days = range(min(skip, days.stop), days.stop)
        self.budget.spend(len(days))
        kept = [i for i in days if base + i <= _MAX_ORDINAL and self._keeps(info, i, nth)]
        return self._pick([base + i for i in kept])

    def _pick(self, ordinals: list[int]) -> datetime | None:
        """The first wanted instant of a period whose kept days are ``ordinals``, its time set being
        ``self.times``; BYSETPOS picks among the period's instants (dateutil's poslist)."""
        if not ordinals:
            return None
        times = self.times
        if self.rule.bysetpos:
            chosen: set[tuple[int, int]] = set()
            self.budget.spend(len(self.rule.bysetpos))
            for pos in self.rule.bysetpos:
                daypos, timepos = divmod(pos if pos < 0 else pos - 1, len(times))
                if -len(ordinals) <= daypos < len(ordinals):
                    chosen.add((ordinals[daypos], timepos))
            candidates: Iterator[tuple[int, int]] = iter(sorted(chosen))
        else:
            candidates = ((o, t) for o in ordinals for t in range(len(times)))
        for ordinal, t in candidates:
            self.budget.spend()
            hour, minute, second = times[t]
            found = datetime.combine(date.fromordinal(ordinal), datetime.min.time()).replace(
                hour=hour, minute=minute, second=second)
            if found >= self.limit:
                return None
            if found > self.after:
                return found
        return None

    def _past_limit(self, ordinal: int) -> bool:
        return ordinal > _MAX_ORDINAL or ordinal > self.limit.toordinal()

    def _yearly(self) -> datetime | None:
        interval, first = self.rule.interval, self.dtstart.year
        year = first + max(0, (self.after.year - first) // interval) * interval
        while year <= 9999 and not self._past_limit(date(year, 1, 1).toordinal()):
            info = self._year(year)
            found = self._period(info, range(info.length), self._nth_table(info, None))
            if found is not None:
                return found
            year += interval
        return None

    def _monthly(self) -> datetime | None:
        interval = self.rule.interval
        first = self.dtstart.year * 12 + self.dtstart.month - 1
        index = first + max(0, (self.after.year * 12 + self.after.month - 1 - first) // interval) * interval
        while True:
            year, month0 = divmod(index, 12)
            if year > 9999 or self._past_limit(date(year, month0 + 1, 1).toordinal()):
                return None
            info = self._year(year)
            starts = info.month_starts
            found = self._period(info, range(starts[month0], starts[month0 + 1]), self._nth_table(info, month0 + 1))
            if found is not None:
                return found
            index += interval

    def _weekly(self) -> datetime | None:
        start = self.dtstart.toordinal()
        week0 = start - (self.dtstart.weekday() - self.rule.wkst) % 7  # the week holding dtstart, from WKST
        step = 7 * self.rule.interval
        k = max(0, (self.after.toordinal() - week0) // step)
        while True:
            # The first week starts at the series' first instance, not at WKST (dateutil's wdayset).
            begin = start if k == 0 else week0 + k * step
            if self._past_limit(begin):
                return None
            info = self._year(date.fromordinal(begin).year)
            i = begin - info.ordinal
            found = self._period(info, range(i, week0 + k * step + 7 - info.ordinal), None)
            if found is not None:
                return found
            k += 1

    def _daily(self) -> datetime | None:
        step, start = self.rule.interval, self.dtstart.toordinal()
        ordinal = start + max(0, (self.after.toordinal() - start) // step) * step
        info: _Year | None = None
        while not self._past_limit(ordinal):
            self.budget.spend()
            info = self._year_of(ordinal, info)
            if self._keeps(info, ordinal - info.ordinal, None):
                found = self._pick([ordinal])
                if found is not None:
                    return found
            ordinal += step
        return None

    def _hourly(self) -> datetime | None:
        r = self.rule
        step = r.interval
        if r.byhour and not self.reachable:
            return None  # off the grid: e.g. INTERVAL=2;BYHOUR=3 for a series starting at an even hour
        if r.bysetpos and 1 not in r.bysetpos and -1 not in r.bysetpos:
            return None  # an hour holds one instant: only BYSETPOS=1 or -1 can pick it
        first = self.dtstart.toordinal() * 24 + self.dtstart.hour
        hour = first + max(0, (self.after.toordinal() * 24 + self.after.hour - first) // step) * step
        minute, second = self.dtstart.minute, self.dtstart.second
        info: _Year | None = None
        while True:
            ordinal = hour // 24
            if self._past_limit(ordinal):
                return None
            self.budget.spend()
            info = self._year_of(ordinal, info)
            day_end = (ordinal + 1) * 24
            if self._keeps(info, ordinal - info.ordinal, None):
                day = datetime.combine(date.fromordinal(ordinal), datetime.min.time())
                for h in range(hour, day_end, step):
                    if r.byhour and h % 24 not in self.reachable:
                        continue
                    self.budget.spend()
                    found = day.replace(hour=h % 24, minute=minute, second=second)
                    if found >= self.limit:
                        return None
                    if found > self.after:
                        return found
            hour += -(-(day_end - hour) // step) * step  # the first hour of the grid on a later day


def _defaults(rule: Rule, dtstart: datetime) -> tuple[frozenset[int], frozenset[int], frozenset[int]]:
    """BYMONTHDAY, the plain BYDAY and BYMONTH with what a rule that names no day takes from its first
    instance: WEEKLY its weekday, MONTHLY its day, YEARLY its day and month (RFC 5545 §3.3.10)."""
    monthday, weekday, month = rule.bymonthday, rule.byweekday, rule.bymonth
    if not (rule.byweekno or rule.byyearday or rule.bymonthday or rule.byweekday or rule.bynweekday):
        if rule.freq == YEARLY:
            month = month or frozenset({dtstart.month})
            monthday = frozenset({dtstart.day})
        elif rule.freq == MONTHLY:
            monthday = frozenset({dtstart.day})
        elif rule.freq == WEEKLY:
            weekday = frozenset({dtstart.weekday()})
    return monthday, weekday, month
