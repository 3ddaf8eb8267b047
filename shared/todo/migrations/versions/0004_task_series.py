"""Recurring tasks: a series per recurring task, and each instance's place in it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import Id, Json, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_series",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("rrule", sa.String(500), nullable=False),
        sa.Column("anchor", sa.String(16), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("dtstart", UTCDateTime, nullable=False),
        sa.Column("template", Json, nullable=False),
        sa.Column("ended_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    # Plain ADD COLUMN (no batch copy on SQLite, which would drop the full-text triggers).
    op.add_column("tasks", sa.Column("series_id", Id, nullable=True))
    op.add_column("tasks", sa.Column("occurrence", sa.Integer, nullable=True))
    op.add_column("tasks", sa.Column("skipped", sa.Boolean, nullable=False, server_default=sa.false()))
    # Two consumers racing on the same completion cannot both create the next instance.
    op.create_index("ux_tasks_series_occurrence", "tasks", ["series_id", "occurrence"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_tasks_series_occurrence", "tasks")
    for column in ("skipped", "occurrence", "series_id"):
        op.drop_column("tasks", column)
    op.drop_table("task_series")
