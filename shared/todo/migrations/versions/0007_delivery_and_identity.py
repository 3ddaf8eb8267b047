"""Dead letters, outbox retries, task ids never reused, and audit entries REPLACE cannot rewrite.

* ``dead_letters``: every event a consumer gave up on, with why (``todo dead-letters`` lists them).
* ``outbox.next_attempt_at``: a row a subscriber asked to retry waits until then; the rows of other
  partition keys flow past it (todo.adapters.outbox).
* SQLite gives a deleted task's id to the next task unless the table is AUTOINCREMENT; that needs the
  table rebuilt. Existing rows keep their ids, and the sequence starts above every task id the outbox,
  the audit trail or the reminders have seen: an id used before this migration is not handed out again
  either. PostgreSQL's sequence (BIGSERIAL) never reuses an id already.
* SQLite's ``INSERT OR REPLACE`` deletes the row it conflicts with without firing DELETE triggers (unless
  recursive triggers are on): an insert whose key exists is refused on the audit tables. PostgreSQL has
  no REPLACE; its statement triggers (0003) also fire for ``INSERT … ON CONFLICT DO UPDATE`` and MERGE.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import Id, Json, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("event_source", sa.String(500), nullable=True),
        sa.Column("event_id", sa.String(255), nullable=True),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    # A redelivered poison event is one dead letter (events without an id are each their own).
    op.create_index("ux_dead_letters_event", "dead_letters", ["consumer", "event_source", "event_id"], unique=True)
    op.create_index("ix_dead_letters_created", "dead_letters", ["created_at"])
    op.add_column("outbox", sa.Column("next_attempt_at", UTCDateTime, nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_autoincrement_tasks()
        _sqlite_refuse_replace()


def _sqlite_autoincrement_tasks() -> None:
    conn = op.get_bind()

    def schema(kind: str, table: str) -> list[str]:
        return [row[0] for row in conn.execute(sa.text(
            "SELECT sql FROM sqlite_master WHERE type = :kind AND tbl_name = :table AND sql IS NOT NULL "
            "ORDER BY name"), {"kind": kind, "table": table})]

    task_indexes, task_triggers = schema("index", "tasks"), schema("trigger", "tasks")
    (tags_table,) = schema("table", "task_tags")
    tags_indexes = schema("index", "task_tags")
    # task_tags references tasks ON DELETE CASCADE, and foreign keys are on (they cannot be switched off
    # inside the migration's transaction): dropping tasks would empty it. Park its rows, rebuild both.
    op.execute("CREATE TEMP TABLE task_tags_0007 AS SELECT task_id, tag, user_id FROM task_tags")
    op.execute("DROP TABLE task_tags")
    for name in ("tasks_fts_insert", "tasks_fts_delete", "tasks_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.create_table(
        "tasks_0007",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("tags", Json, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("recurrence", Json, nullable=True),
        sa.Column("reminders", Json, nullable=False),
        sa.Column("completed_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("series_id", Id, nullable=True),
        sa.Column("occurrence", sa.Integer, nullable=True),
        sa.Column("skipped", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("status IN ('open', 'completed')", name="ck_tasks_status"),
        sa.CheckConstraint("priority BETWEEN 1 AND 3", name="ck_tasks_priority"),
        sqlite_autoincrement=True,
    )
    columns = ", ".join(_TASK_COLUMNS)
    op.execute(f"INSERT INTO tasks_0007 ({columns}) SELECT {columns} FROM tasks")
    op.execute("DROP TABLE tasks")
    op.execute("ALTER TABLE tasks_0007 RENAME TO tasks")
    for sql in task_indexes + task_triggers:  # the same statements as before, now on the new table
        op.execute(sql)
    # Ids the outbox, the trail or the reminders knew (a task deleted before this migration) stay used.
    used = ("max((SELECT coalesce(max(id), 0) FROM tasks), (SELECT coalesce(max(task_id), 0) FROM audit_log), "
            "(SELECT coalesce(max(task_id), 0) FROM reminders), (SELECT coalesce(max(CAST(json_extract(payload, "
            "'$.data.task_id') AS INTEGER)), 0) FROM outbox WHERE topic = 'task-events'))")
    op.execute(f"UPDATE sqlite_sequence SET seq = max(seq, {used}) WHERE name = 'tasks'")
    op.execute(f"INSERT INTO sqlite_sequence (name, seq) SELECT 'tasks', {used} "
               f"WHERE {used} > 0 AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'tasks')")
    op.execute(tags_table)
    for sql in tags_indexes:
        op.execute(sql)
    op.execute("INSERT INTO task_tags (task_id, tag, user_id) SELECT task_id, tag, user_id FROM task_tags_0007")
    op.execute("DROP TABLE task_tags_0007")


_TASK_COLUMNS = ("id", "user_id", "title", "description", "status", "priority", "tags", "due_at", "timezone",
                 "recurrence", "reminders", "completed_at", "created_at", "updated_at", "version", "series_id",
                 "occurrence", "skipped")


def _sqlite_refuse_replace() -> None:
    for table, key in (("audit_log", "seq"), ("audit_chain_head", "id")):
        op.execute(
            f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
            f"WHEN EXISTS (SELECT 1 FROM {table} WHERE {key} = NEW.{key}) "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: REPLACE refused'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in ("audit_log", "audit_chain_head"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
        # tasks stays AUTOINCREMENT: a downgrade must not start handing out used ids again.
    op.drop_column("outbox", "next_attempt_at")
    op.drop_table("dead_letters")
