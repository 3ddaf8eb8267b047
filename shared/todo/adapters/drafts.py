"""A new task and everything recorded with it, sent to PostgreSQL as one prepared statement.

Creating a task writes its row, its tags, the user's change-feed message (numbered by the user's counter
row) and its outbox rows. Through :class:`~todo.adapters.unit_of_work.SqlUnitOfWork` that was BEGIN, four
statements and COMMIT, each compiled by SQLAlchemy and each three network round trips in pg8000 (parse,
describe, execute), behind a pool pre-ping: create-task spent 8 ms of Python a create on it (bench P2).

:class:`DraftingUnitOfWork` keeps those writes as a draft instead, and :meth:`~DraftingUnitOfWork.commit`
sends the draft as one statement of data-modifying CTEs, prepared once per connection (one round trip)
and run outside any transaction block (one statement is atomic by itself): no BEGIN, no COMMIT. The task's
id comes from the tasks sequence beforehand (:class:`TaskIds`, a block of them per round trip), so that the
events' text, which names it, is written in Python like every other event's.

Anything the draft cannot hold (a read, an update, a recurring task, a reminder) opens an ordinary
transaction first and replays the draft into it: every other use case runs as it always did.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pg8000.exceptions import InterfaceError
from sqlalchemy.engine import Engine

from .. import tracing
from ..domain.task import SeriesRef, Status, Task, TaskFields
from ..service.events import OutgoingEvent, push_cloud_event
from .change_feed import numbered_payload
from .db import execute_prepared
from .unit_of_work import SqlUnitOfWork

# $1 id, $2 user, $3 title, $4 description, $5 priority, $6 tags, $7 due_at, $8 timezone, $9 reminders,
# $10 now, $11 the message without its seq, $12 traceparent, $13 the outbox rows, each [event id, topic,
# partition key, payload (or the text before the seq), the text after the seq (null: a payload without)].
# Lists go as JSON: pg8000 writes an array's literal a character at a time in Python (9 % of create-task's
# CPU with the payloads as text[], bench P2); json.dumps is C.
CREATE = """\
WITH task AS (
    INSERT INTO tasks (id, user_id, title, description, status, priority, tags, due_at, timezone, reminders,
                       created_at, updated_at, version)
    VALUES ($1, $2, $3, $4, 'open', $5, $6::jsonb, $7::timestamptz, $8, $9::jsonb, $10::timestamptz,
            $10::timestamptz, 1)
), tagged AS (
    INSERT INTO task_tags (task_id, tag, user_id)
    SELECT $1, t.tag, $2 FROM jsonb_array_elements_text($6::jsonb) AS t(tag)
), numbered AS (
    INSERT INTO user_seqs AS s (user_id, last_seq) VALUES ($2, 1)
    ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq + 1 RETURNING last_seq
), fed AS (
    INSERT INTO user_changes (user_id, seq, message, created_at)
    SELECT $2, last_seq, jsonb_set($11::jsonb, '{seq}', to_jsonb(last_seq)), $10::timestamptz FROM numbered
), queued AS (
    INSERT INTO outbox (event_id, topic, partition_key, payload, created_at, traceparent)
    SELECT e.r ->> 0, e.r ->> 1, e.r ->> 2,
           CASE WHEN e.r ->> 4 IS NULL THEN e.r ->> 3 ELSE (e.r ->> 3) || numbered.last_seq || (e.r ->> 4) END,
           $10::timestamptz, $12
    FROM numbered, jsonb_array_elements($13::jsonb) WITH ORDINALITY AS e(r, n)
    ORDER BY e.n
)
SELECT last_seq FROM numbered"""

NEXT_IDS = "SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, $1)"


def run_prepared(engine: Engine, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` (``$n`` placeholders) run alone, outside a transaction block, on a pooled pg8000
    connection that prepared it once: one round trip. A connection found broken is replaced and the
    statement sent once more; the callers' statements fail on a second run rather than take effect twice
    (a task id is a primary key)."""
    try:
        return _run_once(engine, sql, params)
    except Exception as exc:
        if not _broken(exc):
            raise
    return _run_once(engine, sql, params)


def _run_once(engine: Engine, sql: str, params: Sequence[Any]) -> list[Any]:
    pooled = engine.raw_connection()
    try:
        return execute_prepared(pooled, sql, params)
    except Exception as exc:
        if _broken(exc):
            pooled.invalidate(exc)  # not back into the pool
        raise
    finally:
        pooled.close()


def _broken(exc: BaseException) -> bool:
    """The connection is gone (the server restarted, a proxy dropped it), as opposed to the statement failing."""
    return isinstance(exc, InterfaceError | OSError) or isinstance(exc.__cause__, OSError)


class TaskIds:
    """Task ids from the tasks sequence, taken a block at a time (one round trip per ``block`` creates).

    An id is never given twice (the sequence's promise); a process that stops leaves the rest of its block
    unused, a gap like a rolled-back insert leaves. Ids still rise with time within a process, not across
    processes: nothing orders by id but as the last tie-breaker of a sort."""

    def __init__(self, engine: Engine, block: int = 64) -> None:
        self.engine = engine
        self.block = block
        self._free: list[int] = []
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            if not self._free:
                self._free = [int(row[0]) for row in run_prepared(self.engine, NEXT_IDS, (self.block,))][::-1]
            return self._free.pop()


@dataclass
class _Draft:
    task: Task | None = None
    message: dict[str, Any] | None = None
    push: OutgoingEvent | None = None
    events: list[OutgoingEvent] = field(default_factory=list)
    traceparent: str | None = None


class DraftingUnitOfWork(SqlUnitOfWork):
    """A unit of work on PostgreSQL that sends a new task, its change-feed message and its events as one
    statement at commit (see the module's docstring); any other work opens a transaction as usual."""

    def __init__(self, engine: Engine, ids: TaskIds, after_commit: Any = None) -> None:
        super().__init__(engine, after_commit)
        self.ids = ids
        self._draft: _Draft | None = None

    def __enter__(self) -> DraftingUnitOfWork:
        self._draft = _Draft()
        self.tasks = _DraftTasks(self)  # type: ignore[assignment]
        self.changes = _DraftFeed(self)  # type: ignore[assignment]
        self.outbox = _DraftOutbox(self)  # type: ignore[assignment]
        self.reminders = _Opening(self, "reminders")  # type: ignore[assignment]
        return self

    def open(self) -> SqlUnitOfWork:
        """The ordinary transaction, with what the draft holds written into it."""
        if self._conn is None:
            draft, self._draft = self._draft, None
            super().__enter__()
            if draft is not None and draft.task is not None:
                task = draft.task
                self.tasks.add(task.user_id, task.fields, task.created_at, task_id=task.id)
                if draft.events:
                    self.outbox.add(draft.events, task.created_at)
                if draft.message is not None:
                    assert draft.push is not None
                    self.changes.append(task.user_id, draft.message, task.created_at, event_id=draft.push.id)
        return self

    def claim(self, consumer: str, source: str, event_id: str, now: datetime) -> bool:
        self.open()
        return super().claim(consumer, source, event_id, now)

    def __exit__(self, *exc_info: Any) -> None:
        self._draft = None
        if self._conn is not None:
            try:
                super().__exit__(*exc_info)
            finally:
                self._conn = self._tx = None  # a unit of work may be entered again (series.advance is)

    def commit(self) -> None:
        draft = self._draft
        if self._conn is not None or (draft is not None and draft.task is not None and draft.message is None):
            self.open()
            super().commit()
            return
        if draft is None or draft.task is None:
            return  # nothing was written
        self._draft = None
        with tracing.span("INSERT postgresql", kind="client",
                          attributes={"db.system": "postgresql", "db.statement": CREATE[:1000]}):
            self._send(draft)
        if self.after_commit is not None:
            assert draft.push is not None
            self.after_commit(frozenset({*(event.topic for event in draft.events), draft.push.topic}))

    def _send(self, draft: _Draft) -> None:
        task, push = draft.task, draft.push
        assert task is not None and push is not None
        f = task.fields
        rows: list[tuple[str, str, str, str, str | None]] = [
            (e.id, e.topic, e.partition_key, e.payload(), None) for e in draft.events]
        rows.append((push.id, push.topic, push.partition_key, *numbered_payload(push)))
        params = (task.id, task.user_id, f.title, f.description, int(f.priority), json.dumps(list(f.tags)),
                  f.due_at, f.timezone, json.dumps([r.to_json() for r in f.reminders]), task.created_at,
                  json.dumps(draft.message), draft.traceparent, json.dumps(rows))
        try:
            run_prepared(self.engine, CREATE, params)
        except Exception as exc:
            if not _ran_before(exc):
                raise
            # A first run that committed, on a connection that broke before its answer came back: the
            # second run found the task there. Everything went in with it (one statement).


# The unique keys a draft's rows take that nothing else can hold: its task's id (from the sequence) and its
# events' ids (fresh UUIDs). Which of them a second run trips over first is the server's choice.
_DRAFT_KEYS = frozenset({"tasks_pkey", "task_tags_pkey", "outbox_event_id_key"})


def _ran_before(exc: BaseException) -> bool:
    fields = exc.args[0] if exc.args else None
    return isinstance(fields, dict) and fields.get("C") == "23505" and fields.get("n") in _DRAFT_KEYS


class _Opening:
    """One of the unit of work's stores, reached through the ordinary transaction (opened on first use)."""

    def __init__(self, uow: DraftingUnitOfWork, name: str) -> None:
        self._uow = uow
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(self._uow.open(), self._name), attr)


class _DraftTasks(_Opening):
    def __init__(self, uow: DraftingUnitOfWork) -> None:
        super().__init__(uow, "tasks")

    def add(self, user_id: str, fields: TaskFields, now: datetime, series: SeriesRef | None = None) -> Task:
        draft = self._uow._draft
        if draft is None or draft.task is not None or series is not None or fields.recurrence is not None:
            return self._uow.open().tasks.add(user_id, fields, now, series)
        draft.task = Task(self._uow.ids.next(), user_id, fields, Status.OPEN, None, now, now, 1, None)
        return draft.task


class _DraftFeed(_Opening):
    def __init__(self, uow: DraftingUnitOfWork) -> None:
        super().__init__(uow, "changes")

    def append(self, user_id: str, message: dict[str, Any], now: datetime, event_id: str | None = None) -> None:
        draft = self._uow._draft
        if (draft is None or draft.task is None or not draft.events or draft.message is not None
                or user_id != draft.task.user_id):
            return self._uow.open().changes.append(user_id, message, now, event_id)
        draft.message = message
        draft.push = push_cloud_event(user_id, {**message, "seq": 0}, event_id)
        return None


class _DraftOutbox(_Opening):
    def __init__(self, uow: DraftingUnitOfWork) -> None:
        super().__init__(uow, "outbox")

    def add(self, events: Sequence[OutgoingEvent], now: datetime) -> None:
        draft = self._uow._draft
        if draft is None or draft.task is None or draft.message is not None:
            return self._uow.open().outbox.add(events, now)
        draft.events += events
        draft.traceparent = tracing.current_traceparent()
        return None
