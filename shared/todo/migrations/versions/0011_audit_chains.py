"""The audit trail becomes a chain per partition, each with its own head.

One head row, locked by every append, made audit-sink's throughput the whole cluster's ceiling however
many consumers ran. Now ``audit_chain_heads`` holds a head per chain (``chain`` = the partition of the
user's events, todo.domain.audit.chain_of) and each entry says its ``chain`` and its ``position`` there.

Existing entries stay as they were hashed: they are chain 0's beginning (``chain`` 0, no ``position``:
their place is their seq), and chain 0's head is the old head, so the trail verifies before and after.
``seq`` keeps numbering entries across chains; on PostgreSQL a sequence hands it out now (appenders of
different chains do not share a counter), starting after the last recorded one.

The new heads table refuses DELETE and TRUNCATE (and on SQLite REPLACE) like the old one; the old one is
dropped once its head is copied.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from todo.adapters.tables import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    _heads_table("audit_chain_heads", "chain", sa.CheckConstraint("chain >= 0", name="ck_audit_chain_heads_chain"))
    op.execute("INSERT INTO audit_chain_heads (chain, length, hash, updated_at) "
               "SELECT 0, length, hash, updated_at FROM audit_chain_head")
    op.drop_table("audit_chain_head")
    # ADD COLUMN, not a batch copy: a copy would drop the triggers that keep the trail append-only.
    op.add_column("audit_log", sa.Column("chain", sa.SmallInteger, nullable=False, server_default="0"))
    op.add_column("audit_log", sa.Column("position", sa.BigInteger, nullable=True))
    op.create_index("ix_audit_log_chain", "audit_log", ["chain", "seq"])
    if postgresql:
        # Owned by the column: dropped with it, and restarted by TRUNCATE … RESTART IDENTITY.
        op.execute("CREATE SEQUENCE audit_log_seq AS bigint MINVALUE 1 OWNED BY audit_log.seq")
        op.execute("SELECT setval('audit_log_seq', max(seq)) FROM audit_log HAVING max(seq) IS NOT NULL")


def downgrade() -> None:
    """Back to one chain, which only a trail that never had a second one can be."""
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM audit_log WHERE position IS NOT NULL")).scalar():
        raise RuntimeError("the audit trail has entries on sharded chains; one chain cannot hold them")
    if bind.dialect.name == "postgresql":
        op.execute("DROP SEQUENCE audit_log_seq")
    op.drop_index("ix_audit_log_chain", "audit_log")
    op.execute("ALTER TABLE audit_log DROP COLUMN position")
    op.execute("ALTER TABLE audit_log DROP COLUMN chain")
    _heads_table("audit_chain_head", "id", sa.CheckConstraint("id = 1", name="ck_audit_chain_head_one_row"))
    op.execute("INSERT INTO audit_chain_head (id, length, hash, updated_at) "
               "SELECT 1, length, hash, updated_at FROM audit_chain_heads WHERE chain = 0")
    op.drop_table("audit_chain_heads")


def _heads_table(name: str, key: str, check: sa.CheckConstraint) -> None:
    """A table of chain heads, keyed by ``key``, that refuses DELETE and TRUNCATE (and on SQLite REPLACE)."""
    op.create_table(
        name,
        sa.Column(key, sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("length", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        check,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {name}_append_only BEFORE DELETE OR TRUNCATE ON {name} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()")
        return
    op.execute(f"CREATE TRIGGER {name}_no_delete BEFORE DELETE ON {name} "
               f"BEGIN SELECT RAISE(ABORT, '{name} is append-only: DELETE refused'); END")
    op.execute(f"CREATE TRIGGER {name}_no_replace BEFORE INSERT ON {name} "
               f"WHEN EXISTS (SELECT 1 FROM {name} WHERE {key} = NEW.{key}) "
               f"BEGIN SELECT RAISE(ABORT, '{name} is append-only: REPLACE refused'); END")
