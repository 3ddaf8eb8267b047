"""On PostgreSQL the list query and each filter are answered from indexes, never a sequential scan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from todo.adapters.repository import SqlTaskRepository
from todo.domain.task import Priority, Status
from todo.service.queries import TaskQuery, parse_sort


@pytest.fixture(scope="module")
def seeded(pg_database: str) -> Iterator[Engine]:
    engine = create_engine(pg_database)
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO tasks (user_id, title, description, status, priority, tags, due_at, timezone,
                               reminders, created_at, updated_at, version)
            SELECT 'user' || (i % 200), 'task ' || i || CASE WHEN i % 50 = 0 THEN ' quarterly report' ELSE '' END,
                   'description ' || i, CASE WHEN i % 3 = 0 THEN 'completed' ELSE 'open' END, 1 + i % 3,
                   jsonb_build_array('tag' || (i % 30)),
                   CASE WHEN i % 4 = 0 THEN NULL ELSE now() + (i % 90 - 45) * interval '1 day' END,
                   'UTC', '[]'::jsonb, now() - i * interval '1 minute', now() - i * interval '1 minute', 1
            FROM generate_series(1, 40000) AS i
        """))
        conn.execute(text("INSERT INTO task_tags (task_id, tag, user_id) "
                          "SELECT id, tags->>0, user_id FROM tasks"))
        conn.execute(text("ANALYZE"))
    yield engine
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE tasks, task_tags, outbox RESTART IDENTITY CASCADE"))
    engine.dispose()


def plan_of(engine: Engine, query: TaskQuery) -> dict[str, Any]:
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn:
            SqlTaskRepository(conn).find(query)
            statement, parameters = captured[-1]
            raw = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters).scalar_one()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]


def scans(plan: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


NOW = datetime.now(UTC)
QUERIES = {
    "default": {},
    "status all": {"statuses": ()},
    "completed": {"statuses": (Status.COMPLETED,)},
    "priority": {"priorities": (Priority.HIGH,)},
    "tags all": {"tags": ("tag3", "tag4")},
    "tags any": {"tags": ("tag3", "tag4"), "tag_mode": "any"},
    "due window": {"due_after": NOW, "due_before": NOW.replace(year=NOW.year + 1)},
    "overdue": {"overdue": True},
    "search": {"q": "quarterly report", "sort": ()},
    "search and filters": {"q": "report", "priorities": (Priority.MEDIUM,), "sort": parse_sort("-created_at")},
    "sort created": {"sort": parse_sort("-created_at")},
    "sort updated": {"sort": parse_sort("updated_at")},
    "sort title": {"sort": parse_sort("title")},
    "sort priority": {"sort": parse_sort("-priority")},
}


@pytest.mark.parametrize("name", QUERIES)
def test_list_query_uses_indexes_only(seeded: Engine, name: str) -> None:
    query = TaskQuery(user_id="user7", now=NOW, **QUERIES[name])
    nodes = scans(plan_of(seeded, query))
    assert not [n for n in nodes if n[0] == "Seq Scan"], nodes
    assert any("Index" in kind or "Bitmap" in kind for kind, _ in nodes), nodes
