"""Tasks with tags and full-text search, and the transactional outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import Id, Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
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
        sa.CheckConstraint("status IN ('open', 'completed')", name="ck_tasks_status"),
        sa.CheckConstraint("priority BETWEEN 1 AND 3", name="ck_tasks_priority"),
    )
    due_order = ["user_id", "status", "due_at", sa.text("priority DESC"), sa.text("id DESC")]
    op.create_index("ix_tasks_user_status_due", "tasks", due_order)
    for column in ("priority", "created_at", "updated_at", "title"):
        op.create_index(f"ix_tasks_user_status_{column}", "tasks", ["user_id", "status", column, "id"])

    op.create_table(
        "task_tags",
        sa.Column("task_id", Id, sa.ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag", sa.String(50), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
    )
    op.create_index("ix_task_tags_user_tag", "task_tags", ["user_id", "tag", "task_id"])

    op.create_table(
        "outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition_key", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_search()
    else:
        _sqlite_search()


def _postgresql_search() -> None:
    # Title ranks above tags above description. btree_gin lets one GIN index answer
    # "this user's tasks matching q" without visiting other users' matches.
    op.execute(
        """
        ALTER TABLE tasks ADD COLUMN search tsvector GENERATED ALWAYS AS (
            setweight(to_tsvector('english', title), 'A') ||
            setweight(jsonb_to_tsvector('english', tags, '["string"]'), 'B') ||
            setweight(to_tsvector('english', description), 'C')
        ) STORED
        """
    )
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    op.execute("CREATE INDEX ix_tasks_search ON tasks USING gin (user_id, search)")


def _sqlite_search() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE tasks_fts USING fts5("
        "title, tags, description, content='tasks', content_rowid='id', tokenize='porter unicode61')"
    )
    insert = (
        "INSERT INTO tasks_fts(rowid, title, tags, description) "
        "VALUES (new.id, new.title, new.tags, new.description);"
    )
    delete = (
        "INSERT INTO tasks_fts(tasks_fts, rowid, title, tags, description) "
        "VALUES ('delete', old.id, old.title, old.tags, old.description);"
    )
    op.execute(f"CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN {delete} END")
    op.execute(
        "CREATE TRIGGER tasks_fts_update AFTER UPDATE OF title, tags, description ON tasks "
        f"BEGIN {delete} {insert} END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS tasks_fts")
    op.drop_table("outbox")
    op.drop_table("task_tags")
    op.drop_table("tasks")
