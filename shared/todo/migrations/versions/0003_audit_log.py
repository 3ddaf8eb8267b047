"""The audit trail: an append-only, hash-chained log and its one-row chain head.

The database itself refuses to rewrite history: UPDATE, DELETE and TRUNCATE of ``audit_log`` raise,
and so do DELETE and TRUNCATE of ``audit_chain_head`` (which every append moves forward).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("occurred_at", UTCDateTime, nullable=False),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("changes", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("state", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("seq >= 1", name="ck_audit_log_seq"),
    )
    op.create_index("ix_audit_log_task", "audit_log", ["task_id", "seq"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor", "seq"])
    op.create_index("ix_audit_log_occurred", "audit_log", ["occurred_at"])

    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_chain_head_one_row"),
    )

    if op.get_bind().dialect.name == "postgresql":
        _postgresql_guards()
    else:
        _sqlite_guards()


def _postgresql_guards() -> None:
    # Statement-level: even a DELETE that matches no row is refused, so nobody mistakes it for allowed.
    op.execute(
        """
        CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    for table, operations in (("audit_log", "UPDATE OR DELETE OR TRUNCATE"),
                              ("audit_chain_head", "DELETE OR TRUNCATE")):
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE {operations} ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")


def _sqlite_guards() -> None:
    # SQLite has no TRUNCATE: an unqualified DELETE runs row by row once a trigger exists.
    for table, operation in (("audit_log", "UPDATE"), ("audit_log", "DELETE"), ("audit_chain_head", "DELETE")):
        op.execute(
            f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
        )


def downgrade() -> None:
    op.drop_table("audit_chain_head")
    op.drop_table("audit_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_refuse_change()")
