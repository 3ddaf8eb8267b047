"""The per-user change feed that push-update serves and replays, and one-use WebSocket tickets.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import Json, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_seqs",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "user_changes",
        sa.Column("user_id", sa.String(255), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("message", Json, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "ws_tickets",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("roles", Json, nullable=False),
        sa.Column("token_expires_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ws_tickets")
    op.drop_table("user_changes")
    op.drop_table("user_seqs")
