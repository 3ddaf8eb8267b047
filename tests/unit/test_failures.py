"""Which failures a consumer retries (transient) and which make its event poison (everything else)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc

from todo.adapters.failures import is_transient
from todo.settings import ConfigError


def pg_error(code: str) -> sa_exc.DBAPIError:
    """A PostgreSQL error as SQLAlchemy wraps what pg8000 raises: the server's fields as its argument."""
    orig = Exception({"S": "ERROR", "C": code, "M": "…"})
    return sa_exc.DBAPIError("SELECT 1", None, orig)


def sqlite_error(sql: str) -> sa_exc.DBAPIError:
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    except sa_exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the statement did not fail")


@pytest.mark.parametrize(("code", "transient"), [
    ("40001", True),  # serialization_failure
    ("40P01", True),  # deadlock_detected
    ("55P03", True),  # lock_not_available: lock_timeout
    ("57014", True),  # query_canceled: statement_timeout
    ("57P01", True),  # admin_shutdown
    ("08006", True),  # connection_failure
    ("53300", True),  # too_many_connections
    ("57P04", False),  # database_dropped
    ("22003", False),  # numeric_value_out_of_range: this event's data
    ("23505", False),  # unique_violation
    ("42P01", False),  # undefined_table
])
def test_postgresql_errors_are_transient_by_sqlstate(code: str, transient: bool) -> None:
    assert is_transient(pg_error(code)) is transient


def test_a_busy_sqlite_database_is_transient_and_a_bad_statement_is_not() -> None:
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = 5  # SQLITE_BUSY
    assert is_transient(sa_exc.OperationalError("INSERT", None, busy))
    assert not is_transient(sqlite_error("SELECT * FROM no_such_table"))
    assert not is_transient(sqlite_error("SELECT 1 +"))


@pytest.mark.parametrize(("error", "transient"), [
    (ConnectionRefusedError("no database"), True),
    (TimeoutError("timed out"), True),
    (ConfigError("no Dapr sidecar yet"), True),
    (sa_exc.TimeoutError("QueuePool limit reached"), True),
    (OverflowError("date value out of range"), False),
    (ValueError("bad"), False),
    (KeyError("series"), False),
    (ZeroDivisionError(), False),
])
def test_other_failures_are_transient_only_when_they_say_so(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_a_failure_raised_from_a_transient_one_is_transient() -> None:
    try:
        try:
            raise ConnectionResetError("peer went away")
        except ConnectionResetError as cause:
            raise RuntimeError("could not load the series") from cause
    except RuntimeError as exc:
        assert is_transient(exc)
    assert not is_transient(RuntimeError("could not load the series"))
