"""Reminders, per-user notification settings, and every notification attempt.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import Id, Json, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("task_id", Id, nullable=False),
        sa.Column("spec", sa.String(16), nullable=False),
        sa.Column("remind_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("triggered_at", UTCDateTime, nullable=True),
        sa.CheckConstraint("status IN ('scheduled', 'triggered', 'cancelled')", name="ck_reminders_status"),
    )
    op.create_index("ix_reminders_due", "reminders", ["status", "remind_at"])
    op.create_index("ix_reminders_task", "reminders", ["task_id", "status"])
    op.create_table(
        "notification_settings",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("settings", Json, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "notification_attempts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("reminder_id", Id, nullable=False),
        sa.Column("channel", sa.String(600), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("ok", sa.Boolean, nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("delivered", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # At most one successful delivery per reminder and channel, whatever redelivers the event.
    op.create_index("ux_notification_delivered", "notification_attempts", ["reminder_id", "channel"], unique=True,
                    postgresql_where=sa.text("delivered"), sqlite_where=sa.text("delivered"))


def downgrade() -> None:
    op.drop_table("notification_attempts")
    op.drop_table("notification_settings")
    op.drop_table("reminders")
