"""On PostgreSQL a new task, its tags, its change-feed message and its events are one statement, and a
pooled connection the server dropped costs a reconnect, not a failed request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from todo.adapters.change_feed import SqlChangeFeed, numbered_payload
from todo.adapters.drafts import DraftingUnitOfWork, TaskIds
from todo.adapters.tables import outbox, task_tags, tasks, user_changes
from todo.domain.task import Priority, Reminder, TaskFields
from todo.service import tasks as service
from todo.service.events import push_cloud_event
from todo.service.tasks import Context

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def pg(engine: Engine) -> Engine:
    if engine.dialect.name != "postgresql":
        pytest.skip("one statement of data-modifying CTEs: PostgreSQL only")
    return engine


def _statements(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_new_task_and_all_it_records_go_as_one_statement_without_begin_or_commit(pg: Engine) -> None:
    through_sqlalchemy = _statements(pg)
    ids = TaskIds(pg)
    ids.next()  # the block of ids is fetched once per 64 creates: not this create's
    fields = TaskFields(title="Write 'the' \"report\"", description="a\\b {c}", priority=Priority.HIGH,
                        tags=("work", "a b", 'q"uote', "{brace}"), due_at=NOW + timedelta(days=1))
    task = service.create_task(DraftingUnitOfWork(pg, ids), Context("alice", "create-task", NOW), fields)

    assert through_sqlalchemy == []  # nothing went through SQLAlchemy's compile-and-execute path
    with pg.connect() as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task.id)).mappings().one()
        tags = {r.tag for r in conn.execute(select(task_tags.c.tag).where(task_tags.c.task_id == task.id))}
        change = conn.execute(select(user_changes).where(user_changes.c.user_id == "alice")).mappings().one()
        rows = conn.execute(select(outbox.c.topic, outbox.c.payload).order_by(outbox.c.id)).all()
    assert (row["title"], row["description"], row["priority"], row["tags"]) == (
        fields.title, fields.description, 3, list(fields.tags))
    assert row["due_at"] == fields.due_at and row["created_at"] == NOW and row["version"] == 1
    assert tags == set(fields.tags)
    assert change["seq"] == 1 and change["message"]["seq"] == 1 and change["message"]["task"] == task.to_json()
    assert [topic for topic, _ in rows] == ["task-events", "task-updates"]  # the task's event first
    created, pushed = (json.loads(payload) for _, payload in rows)
    assert created["data"]["task_data"] == task.to_json()
    assert pushed["data"]["message"] == {**change["message"]}


def test_the_second_change_of_a_user_gets_the_next_seq_in_its_message_and_its_push(pg: Engine) -> None:
    ids = TaskIds(pg)
    for title in ("one", "two"):
        service.create_task(DraftingUnitOfWork(pg, ids), Context("bob", "create-task", NOW), TaskFields(title=title))
    with pg.connect() as conn:
        seqs = [r.message["seq"] for r in conn.execute(select(user_changes).order_by(user_changes.c.seq))]
        pushes = [json.loads(r.payload)["data"]["message"]["seq"]
                  for r in conn.execute(select(outbox.c.payload).where(outbox.c.topic == "task-updates")
                                        .order_by(outbox.c.id))]
    assert seqs == pushes == [1, 2]


def test_a_create_the_draft_cannot_hold_runs_as_an_ordinary_transaction(pg: Engine) -> None:
    # A reminder to plan reads and writes the reminders table: the draft is replayed into a transaction.
    fields = TaskFields(title="call", due_at=NOW + timedelta(days=1), reminders=(Reminder(before=timedelta(hours=1)),))
    through_sqlalchemy = _statements(pg)
    task = service.create_task(DraftingUnitOfWork(pg, TaskIds(pg)), Context("carol", "create-task", NOW), fields)
    assert through_sqlalchemy  # the ordinary path
    with pg.connect() as conn:
        topics = [r.topic for r in conn.execute(select(outbox.c.topic).order_by(outbox.c.id))]
        assert conn.execute(select(tasks.c.id).where(tasks.c.id == task.id)).scalar_one() == task.id
    assert topics == ["task-events", "reminders", "task-updates"]


def test_connections_the_server_closed_while_pooled_are_replaced_and_the_create_succeeds(pg: Engine) -> None:
    ids = TaskIds(pg)
    service.create_task(DraftingUnitOfWork(pg, ids), Context("dave", "create-task", NOW), TaskFields(title="warm"))
    with pg.connect() as conn:  # the pool's connections, all of them, are killed by the server
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        conn.commit()
    task = service.create_task(DraftingUnitOfWork(pg, ids), Context("dave", "create-task", NOW),
                               TaskFields(title="after"))
    with pg.connect() as conn:
        assert conn.execute(select(tasks.c.title).where(tasks.c.id == task.id)).scalar_one() == "after"


def test_a_create_whose_answer_was_lost_after_it_committed_is_not_made_twice(pg: Engine,
                                                                            monkeypatch: Any) -> None:
    import todo.adapters.drafts as drafts

    real = drafts.run_prepared

    def commit_then_send_again(engine: Engine, sql: str, params: Any) -> list[Any]:
        # As run_prepared does when the connection breaks after the server committed, before the answer:
        # the statement goes once more, on a new connection.
        if sql == drafts.CREATE:
            real(engine, sql, params)
        return real(engine, sql, params)

    monkeypatch.setattr(drafts, "run_prepared", commit_then_send_again)
    task = service.create_task(DraftingUnitOfWork(pg, TaskIds(pg)), Context("erin", "create-task", NOW),
                               TaskFields(title="once"))
    with pg.connect() as conn:
        assert conn.execute(select(tasks.c.id).where(tasks.c.user_id == "erin")).scalars().all() == [task.id]
        assert len(conn.execute(select(outbox.c.id)).all()) == 2


def test_a_push_payload_is_the_two_halves_around_its_seq_whatever_the_message_keys() -> None:
    for message in ({"type": "task.created", "task": {"id": 1}, "time": "t"},
                    {"type": "reminder", "reminder": {"id": 9}, "time": "t"}):
        pushed = push_cloud_event("u", {**message, "seq": 0})
        head, tail = numbered_payload(pushed)
        numbered = push_cloud_event("u", {**message, "seq": 1234}, pushed.id)
        assert head + "1234" + tail == numbered.payload()


def test_the_change_feed_queues_its_push_in_the_same_statement_on_postgresql(pg: Engine) -> None:
    statements = _statements(pg)
    with pg.begin() as conn:
        SqlChangeFeed(conn).append("frank", {"type": "reminder", "reminder": {}, "time": "t"}, NOW, event_id="r-1")
    assert len([s for s in statements if "INSERT" in s]) == 1
    with pg.connect() as conn:
        payload = conn.execute(select(outbox.c.payload).where(outbox.c.event_id == "r-1")).scalar_one()
    assert json.loads(payload)["data"]["message"]["seq"] == 1


def test_the_pools_connections_send_without_waiting_on_nagles_algorithm(pg: Engine) -> None:
    """A statement larger than pg8000's write buffer went in segments, the last held by Nagle until the
    server's delayed ACK (40 ms a delivery, bench P7): every pooled connection has TCP_NODELAY."""
    import socket

    with pg.connect() as conn:
        sock = conn.connection.dbapi_connection._usock  # type: ignore[union-attr]
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            pytest.skip("a Unix socket has no Nagle's algorithm")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
