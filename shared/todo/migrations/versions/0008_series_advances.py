"""A series remembers how far it has advanced, deleted instances included.

on-task-event skips an event about an instance older than the series' newest, so that a late event
cannot make a second next instance. Reading "newest" from the instances that still exist is not enough:
deletes are hard, so once instance 6 is deleted, a late delete of instance 5 would make a second 6 (the
unique (series_id, occurrence) index covers existing rows only). ``task_series.last_occurrence`` keeps
the highest occurrence the series ever made, written in the transaction that makes it; existing series
start from the instances they still have (an instance deleted before this migration cannot be known).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("task_series", sa.Column("last_occurrence", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE task_series SET last_occurrence = COALESCE("
               "(SELECT MAX(occurrence) FROM tasks WHERE tasks.series_id = task_series.id), 0)")


def downgrade() -> None:
    with op.batch_alter_table("task_series") as batch:
        batch.drop_column("last_occurrence")
