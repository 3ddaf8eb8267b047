"""The outbox keeps the trace context of the change it publishes.

``outbox.traceparent``: the W3C ``traceparent`` of the span that wrote the row (NULL when not traced). The
relay sends it as the CloudEvent ``traceparent`` extension, so that one trace follows the change from
its HTTP request through daprd and Kafka to each consumer (todo.tracing).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "traceparent")
