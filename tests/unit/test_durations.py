from __future__ import annotations

from datetime import timedelta

import pytest

from todo.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(("text", "value"), [
    ("PT15M", timedelta(minutes=15)), ("PT2H", timedelta(hours=2)), ("P1D", timedelta(days=1)),
    ("P2W", timedelta(weeks=2)), ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
    ("PT45S", timedelta(seconds=45)),
])
def test_parse_and_format_round_trip(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize("text", ["", "P", "PT", "15M", "P1Y", "P1M", "PT0M", "P400D", "PT-5M", "pt15m", "P1DT"])
def test_calendar_empty_zero_negative_or_huge_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
