"""The relational schema, as SQLAlchemy Core tables (the migrations create it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on PostgreSQL (timestamptz) and SQLite (text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the database layer")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json: Any = JSON().with_variant(JSONB(), "postgresql")
Id: Any = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("status", String(16), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("tags", Json, nullable=False),
    Column("due_at", UTCDateTime, nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("recurrence", Json, nullable=True),
    Column("reminders", Json, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("version", Integer, nullable=False),
    Column("series_id", Id, nullable=True),
    Column("occurrence", Integer, nullable=True),
    Column("skipped", Boolean, nullable=False, server_default=false()),
    # The default list order (due_at nulls last, then priority high first) walks this index.
    Index("ix_tasks_user_status_due", "user_id", "status", "due_at", text("priority DESC"), text("id DESC")),
    Index("ix_tasks_user_status_priority", "user_id", "status", "priority", "id"),
    Index("ix_tasks_user_status_created", "user_id", "status", "created_at", "id"),
    Index("ix_tasks_user_status_updated", "user_id", "status", "updated_at", "id"),
    Index("ix_tasks_user_status_title", "user_id", "status", "title", "id"),
    Index("ux_tasks_series_occurrence", "series_id", "occurrence", unique=True),
    # An id is never given to a second task, or /tasks/{id}/history would mix two (migration 0007).
    sqlite_autoincrement=True,
)

# A recurring task: its rule and the fields each new instance starts from (migration 0004).
task_series = Table(
    "task_series",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("rrule", String(500), nullable=False),
    Column("anchor", String(16), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("dtstart", UTCDateTime, nullable=False),
    Column("template", Json, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The highest occurrence ever made, deleted instances included (migration 0008): deletes are hard,
    # so the instances that still exist cannot say how far the series has advanced.
    Column("last_occurrence", Integer, nullable=False, server_default="0"),
)

task_tags = Table(
    "task_tags",
    metadata,
    Column("task_id", Id, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(50), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Index("ix_task_tags_user_tag", "user_id", "tag", "task_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("topic", String(255), nullable=False),
    Column("partition_key", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # the structured CloudEvent, byte for byte as published
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),  # a subscriber asked for a retry: not before then
    Column("traceparent", String(55), nullable=True),  # W3C trace context of the writing span (0010), if traced
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

# Idempotent consumers: one row per (consumer, CloudEvent source, id), written in the transaction
# of the effect, so a redelivered event finds its row and changes nothing.
processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(100), primary_key=True),
    Column("source", String(500), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
)

# The audit trail (audit-sink): a hash chain per partition (migration 0011, docs/audit.md). Append-only:
# triggers refuse UPDATE, DELETE and TRUNCATE (migration 0003), and on SQLite the REPLACE that would
# delete a row without firing them (0007). ``position`` is an entry's place in its chain, assigned by the
# appender, gap-free, under the lock of the chain's head; NULL for entries from before chains (chain 0,
# at their seq). ``seq`` numbers entries across chains (a sequence on PostgreSQL, migration 0011).
# ``changes`` and ``state`` are plain JSON, not JSONB: they read back exactly as they were hashed.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(255), nullable=False),
    Column("source", String(500), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(100), nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("changes", JSON(none_as_null=True), nullable=True),
    Column("state", JSON(none_as_null=True), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("task_version", BigInteger, nullable=True),  # migration 0009: orders a task's trail; NULL before
    Column("chain", SmallInteger, nullable=False, server_default="0"),
    Column("position", BigInteger, nullable=True),
    Index("ix_audit_log_task", "task_id", "seq"),
    Index("ix_audit_log_actor", "actor", "seq"),
    Index("ix_audit_log_occurred", "occurred_at"),
    Index("ix_audit_log_chain", "chain", "seq"),
)
AUDIT_SEQ = "audit_log_seq"  # PostgreSQL's sequence of seqs

# A row per chain: its length and last hash. Cutting entries off a chain's end leaves its head pointing
# past them; locking it serialises that chain's appenders so that it never forks.
audit_chain_heads = Table(
    "audit_chain_heads",
    metadata,
    Column("chain", SmallInteger, primary_key=True, autoincrement=False),
    Column("length", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Both refuse DELETE and TRUNCATE (the log also UPDATE) through their own triggers.
AUDIT_TABLES = ("audit_log", "audit_chain_heads")

# Every event a consumer gave up on, and why (migration 0007): poison, or a retry budget spent. ``event``
# is the CloudEvent as JSON text (ASCII-escaped: a NUL or a lone surrogate in it is still storable),
# or the body as received when it was no CloudEvent. ``todo dead-letters`` lists them.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("consumer", String(100), nullable=False),
    Column("topic", String(255), nullable=True),
    Column("event_source", String(500), nullable=True),
    Column("event_id", String(255), nullable=True),
    Column("event", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ux_dead_letters_event", "consumer", "event_source", "event_id", unique=True),
    Index("ix_dead_letters_created", "created_at"),
)

# Reminders (migration 0005): one row per planned reminder of an open task. The scan moves a due
# row from 'scheduled' to 'triggered' under FOR UPDATE SKIP LOCKED, so it fires once.
reminders = Table(
    "reminders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("task_id", Id, nullable=False),
    Column("spec", String(16), nullable=False),  # "0", "1", … (the task's reminder) or "snooze"
    Column("remind_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # scheduled | triggered | cancelled
    Column("created_at", UTCDateTime, nullable=False),
    Column("triggered_at", UTCDateTime, nullable=True),
    Index("ix_reminders_due", "status", "remind_at"),
    Index("ix_reminders_task", "task_id", "status"),
)

notification_settings = Table(
    "notification_settings",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("settings", Json, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every attempt on every channel, and the deliveries that succeeded (one per reminder and channel).
notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reminder_id", Id, nullable=False),
    Column("channel", String(600), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("detail", Text, nullable=True),
    Column("at", UTCDateTime, nullable=False),
    Column("delivered", Boolean, nullable=False, server_default=false()),
    Index("ux_notification_delivered", "reminder_id", "channel", unique=True,
          postgresql_where=text("delivered"), sqlite_where=text("delivered")),
)

# The per-user change feed (migration 0006): every change of a user's tasks, and every in-app
# reminder, numbered 1, 2, 3 … per user in commit order. push-update replays it to clients that
# reconnect with ?since=<seq>, and fills any gap in what Kafka brought.
user_seqs = Table(
    "user_seqs",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)

user_changes = Table(
    "user_changes",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("message", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# One-use WebSocket tickets (POST /ws/ticket): stored by hash, taken with a DELETE, any process.
ws_tickets = Table(
    "ws_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("roles", Json, nullable=False),
    Column("token_expires_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)
