"""todo.adapters.db keeps pg8000's placeholder conversion, computed once per statement text."""

from __future__ import annotations

from typing import Any

import pg8000.legacy
import pytest
from pg8000.dbapi import convert_paramstyle

from todo.adapters.db import _cached_paramstyle

CASES: list[tuple[str, str, Any]] = [
    ("format", "INSERT INTO t (a, b) VALUES (%s::INTEGER, %s::VARCHAR)", (1, "x")),
    ("format", "SELECT '100%%' || %s, 'it''s %s' FROM t WHERE a LIKE %s", ("a", "b%")),
    ("format", 'SELECT "we%ird" FROM t -- %s\nWHERE a = %s', (3,)),
    ("named", "SELECT :a, :b::text, :a FROM t WHERE x = ':c'", {"a": 1, "b": "two", "c": "never"}),
    ("pyformat", "SELECT %(a)s, %(b)s, %(a)s", {"a": 1, "b": 2}),
    ("qmark", "SELECT ?, ?", (1, 2)),
    ("numeric", "SELECT :1, :2, sum(x)::float FROM t", (1, 2)),
]


@pytest.mark.parametrize(("style", "query", "args"), CASES)
def test_a_statement_converts_as_pg8000_converts_it_the_first_time_and_every_time_after(
        style: str, query: str, args: Any) -> None:
    _cached_paramstyle()
    cached = pg8000.legacy.convert_paramstyle
    assert cached is not convert_paramstyle
    expected = convert_paramstyle(style, query, args)
    assert cached(style, query, args) == expected
    assert cached(style, query, args) == expected  # from the cache


def test_the_same_text_with_other_values_gets_those_values() -> None:
    _cached_paramstyle()
    cached = pg8000.legacy.convert_paramstyle
    query = "SELECT :a, :b"
    assert cached("named", query, {"a": 1, "b": 2}) == ("SELECT $1, $2", (1, 2))
    assert cached("named", query, {"a": "x", "b": None}) == ("SELECT $1, $2", ("x", None))


def test_a_placeholder_pg8000_refuses_is_still_refused() -> None:
    _cached_paramstyle()
    with pytest.raises(pg8000.exceptions.InterfaceError):
        pg8000.legacy.convert_paramstyle("format", "SELECT %d", (1,))
