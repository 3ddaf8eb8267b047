"""Reads run in autocommit: no transaction round trips, and on SQLite no write lock to wait for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from todo.adapters.db import parse_timestamptz
from todo.domain.task import TaskFields
from todo.runtime import Runtime
from todo.service import tasks
from todo.service.tasks import Context


def test_a_read_does_not_wait_for_a_writer(runtime: Runtime, engine: Engine) -> None:
    ctx = Context("alice", "create-task", datetime.now(UTC))
    task = tasks.create_task(runtime.uow(), ctx, TaskFields(title="t"))
    with runtime.uow() as writer:  # holds the write lock (SQLite) and an open transaction
        writer.tasks.add("alice", TaskFields(title="uncommitted"), ctx.now)
        assert tasks.get_task(runtime.read_uow(), ctx, task.id).fields.title == "t"
        items, _ = tasks.list_tasks(runtime.read_uow(), tasks.TaskQuery(user_id="alice", now=ctx.now))
        assert [t.fields.title for t in items] == ["t"]  # nothing uncommitted is seen


def test_a_read_only_unit_of_work_cannot_commit(runtime: Runtime) -> None:
    with runtime.read_uow() as uow, pytest.raises(RuntimeError, match="nothing to commit"):
        uow.commit()


@pytest.mark.parametrize("value", [
    "2026-03-29 01:30:00+00", "2026-03-29 01:30:00.123456+00", "2026-10-25 02:30:00+05:30",
])
def test_timestamps_are_read_as_pg8000_would(value: str) -> None:
    from pg8000.converters import timestamptz_in

    assert parse_timestamptz(value) == timestamptz_in(value)


def test_an_offset_with_seconds_is_read_too() -> None:
    # A zone's local mean time before 1883 (New York: -04:56:02); pg8000 alone returns the text.
    assert parse_timestamptz("1883-11-18 12:00:00-04:56:02") == datetime(
        1883, 11, 18, 16, 56, 2, tzinfo=UTC)


def test_timestamps_outside_iso_fall_back_to_pg8000() -> None:
    assert parse_timestamptz("infinity") == "infinity"
    assert parse_timestamptz("0044-03-15 12:00:00+00 BC") == "0044-03-15 12:00:00+00 BC"


def test_postgres_timestamps_read_back_exactly(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("pg8000's converter: PostgreSQL only")
    with engine.connect() as conn:
        conn.execute(text("SET TIME ZONE 'Asia/Kolkata'"))
        got = conn.execute(text("SELECT timestamptz '2026-01-02 03:04:05.678901+00'")).scalar_one()
    assert got == datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert got.utcoffset() == timedelta(hours=5, minutes=30) and isinstance(got.tzinfo, timezone)
