"""A task id names one task forever: never given to another once its task is deleted (issue 10, found 5)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from todo.adapters.db import make_engine
from todo.adapters.migrate import upgrade
from todo.adapters.unit_of_work import SqlUnitOfWork
from todo.domain.task import TaskFields
from todo.runtime import Runtime
from todo.service import tasks as service
from todo.service.queries import TaskQuery
from todo.service.tasks import Context

from ..conftest import base_settings
from .conftest import Api


def test_the_newest_tasks_id_is_not_given_to_the_next_task_once_it_is_deleted(
        runtime: Runtime, alice: Api) -> None:
    first = alice.post("/tasks", json={"title": "kept"}).json()
    newest = alice.post("/tasks", json={"title": "deleted"}).json()
    assert alice.delete(f"/tasks/{newest['id']}").status_code == 204
    after = alice.post("/tasks", json={"title": "created after"}).json()
    assert after["id"] > newest["id"] > first["id"]
    runtime.relay.drain()
    history = alice.get(f"/tasks/{newest['id']}/history").json()["items"]
    assert [(e["action"], e["state"]["title"]) for e in history] == [("task.created", "deleted"),
                                                                      ("task.deleted", "deleted")]


def test_migrating_a_sqlite_database_keeps_its_tasks_and_retires_the_ids_it_used(tmp_path: Path) -> None:
    """0007 rebuilds SQLite's tasks as AUTOINCREMENT: rows, tags and search stay; the id of a task deleted
    before the migration (known to the outbox) is not handed out afterwards."""
    engine = make_engine(base_settings(tmp_path))
    upgrade(engine, "0006")
    now = datetime.now(UTC)
    # Written as a 0006 database held them, in SQL: today's stores write columns later migrations add.
    with engine.begin() as conn:
        for n in (1, 2, 3):
            conn.execute(text("INSERT INTO tasks (id, user_id, title, status, priority, tags, timezone, reminders, "
                              "created_at, updated_at, version) VALUES (:id, 'alice', :title, 'open', 2, :tags, "
                              "'UTC', '[]', :now, :now, 1)"),
                         {"id": n, "title": f"report {n}", "tags": f'["work", "q{n}"]', "now": now.isoformat()})
            for tag in ("work", f"q{n}"):
                conn.execute(text("INSERT INTO task_tags (task_id, tag, user_id) VALUES (:id, :tag, 'alice')"),
                             {"id": n, "tag": tag})
        conn.execute(text("DELETE FROM tasks WHERE id = 3"))
        conn.execute(text("INSERT INTO outbox (event_id, topic, partition_key, payload, created_at, attempts) "
                          "VALUES ('e3', 'task-events', 'alice', :payload, :now, 0)"),
                     {"payload": '{"type": "task.deleted", "data": {"task_id": 3}}', "now": now.isoformat()})
    upgrade(engine)
    with engine.connect() as conn:
        assert "AUTOINCREMENT" in conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'tasks'")).scalar()
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    ctx = Context("alice", "create-task", now)
    found, _ = service.list_tasks(SqlUnitOfWork(engine, read_only=True),
                                  TaskQuery(user_id="alice", now=ctx.now, q="report"))
    assert sorted((t.id, t.fields.tags) for t in found) == [(1, ("work", "q1")), (2, ("work", "q2"))]
    assert service.create_task(SqlUnitOfWork(engine), ctx, TaskFields(title="new")).id == 4
    service.delete_task(SqlUnitOfWork(engine), ctx, 2)  # tags go with their task still
    with engine.connect() as conn:
        tags = conn.execute(text("SELECT count(*) FROM task_tags WHERE task_id = 2"))
        assert tags.scalar() == 0
    engine.dispose()


def test_migrating_remembers_how_far_each_series_has_advanced(tmp_path: Path) -> None:
    """0008 starts each series' last_occurrence from the instances it still has."""
    engine = make_engine(base_settings(tmp_path))
    upgrade(engine, "0007")
    now = datetime.now(UTC).isoformat()
    with engine.begin() as conn:
        for series_id in (1, 2):
            conn.execute(text("INSERT INTO task_series (id, user_id, rrule, anchor, timezone, dtstart, template, "
                              "created_at) VALUES (:id, 'alice', 'FREQ=DAILY', 'schedule', 'UTC', :now, '{}', :now)"),
                         {"id": series_id, "now": now})
        for occurrence in (1, 2, 4):
            conn.execute(text("INSERT INTO tasks (user_id, title, status, priority, tags, timezone, reminders, "
                              "created_at, updated_at, version, series_id, occurrence) VALUES ('alice', 'x', "
                              "'open', 1, '[]', 'UTC', '[]', :now, :now, 1, 1, :occurrence)"),
                         {"now": now, "occurrence": occurrence})
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, last_occurrence FROM task_series ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, 4), (2, 0)]
    engine.dispose()
