"""Each audit entry keeps the task version its event is about.

``seq`` is arrival order, and a broker may deliver a task's events out of commit order; the version
orders a task's trail (``todo.domain.audit.trail_position``). Entries recorded before this column keep
NULL: they are hashed without it, and the table refuses updates, so they cannot be filled in (a task's
history places them first, in ``seq`` order, as they were shown before).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("task_version", sa.BigInteger, nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN on both (SQLite 3.35+): a batch copy would drop the triggers that keep
    # the trail append-only.
    op.execute("ALTER TABLE audit_log DROP COLUMN task_version")
