"""The audit trail in SQL: the append-only log, its chain head, and a unit of work around them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.engine import Connection, RowMapping

from ..domain.audit import GENESIS_HASH, AuditEntry, ChainHead, Unreadable
from ..service.audit import AuditQuery
from .db import upsert
from .idempotency import claim_many
from .tables import audit_chain_head, audit_log
from .unit_of_work import SqlTransaction

_HEAD_ID = 1
_FIELDS = tuple(c.name for c in audit_log.columns)
_HEAD = select(audit_chain_head.c.length, audit_chain_head.c.hash).where(audit_chain_head.c.id == _HEAD_ID)


class SqlAuditStore:
    def __init__(self, conn: Connection, batch: int = 1000) -> None:
        self.conn = conn
        self.batch = batch

    def claim_many(self, consumer: str, events: Iterable[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        return claim_many(self.conn, consumer, events, now)

    # -- the chain head ------------------------------------------------------------------------------

    def lock_head(self, now: datetime) -> ChainHead:
        """Read the head and hold it until the transaction ends: appenders take turns here.

        On PostgreSQL that is the row lock; on SQLite every write transaction already holds the
        database's write lock (BEGIN IMMEDIATE).
        """
        stmt = _HEAD
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        if row is None:  # the first append ever: whoever creates the row, everyone then locks it
            self.conn.execute(upsert(self.conn, audit_chain_head).values(
                id=_HEAD_ID, length=0, hash=GENESIS_HASH, updated_at=now).on_conflict_do_nothing())
            row = self.conn.execute(stmt).one()
        return ChainHead(row.length, row.hash)

    def head(self) -> ChainHead:
        row = self.conn.execute(_HEAD).first()
        return ChainHead() if row is None else ChainHead(row.length, row.hash)

    # -- entries -------------------------------------------------------------------------------------

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Insert consecutive entries and move the head onto the last (the caller holds its lock)."""
        if not entries:
            return
        # RETURNING makes SQLAlchemy batch the rows into multi-row VALUES ("insertmanyvalues", one
        # statement compiled once); without it pg8000's executemany is a round trip per entry.
        self.conn.execute(insert(audit_log).returning(audit_log.c.seq),
                          [{name: getattr(entry, name) for name in _FIELDS} for entry in entries])
        first, last = entries[0], entries[-1]
        moved = self.conn.execute(
            update(audit_chain_head)
            .where(audit_chain_head.c.id == _HEAD_ID, audit_chain_head.c.length == first.seq - 1,
                   audit_chain_head.c.hash == first.prev_hash)
            .values(length=last.seq, hash=last.hash, updated_at=last.recorded_at)
        )
        if moved.rowcount != 1:
            raise RuntimeError(f"the audit chain head moved under entry {first.seq}; was its lock taken?")

    def task_entries(self, task_id: int, actor: str | None = None) -> list[AuditEntry]:
        stmt = select(audit_log).where(audit_log.c.task_id == task_id)
        if actor is not None:
            stmt = stmt.where(audit_log.c.actor == actor)
        return [_entry(row) for row in self.conn.execute(stmt.order_by(audit_log.c.seq)).mappings()]

    def entries(self) -> Iterator[AuditEntry | Unreadable]:
        """Every entry in ``seq`` order, read in keyset batches (the trail may not fit in memory). A batch
        holding a row that does not read back as an entry is read again row by row, and that row is
        :class:`Unreadable`: the verifier reports it rather than fail on it."""
        after: Any = None
        while True:
            stmt, window = select(audit_log), select(audit_log.c.seq)
            if after is not None:
                stmt, window = stmt.where(audit_log.c.seq > after), window.where(audit_log.c.seq > after)
            try:
                found: list[AuditEntry | Unreadable] = [_entry(row) for row in self.conn.execute(
                    stmt.order_by(audit_log.c.seq).limit(self.batch)).mappings().all()]
            except Exception:  # a value no column type reads back: find the row, keep going
                found = [self._one(seq) for seq in
                         self.conn.execute(window.order_by(audit_log.c.seq).limit(self.batch)).scalars().all()]
            yield from found
            if len(found) < self.batch:
                return
            after = found[-1].seq

    def _one(self, seq: Any) -> AuditEntry | Unreadable:
        try:
            return _entry(self.conn.execute(select(audit_log).where(audit_log.c.seq == seq)).mappings().one())
        except Exception:
            return Unreadable(seq)

    def find(self, query: AuditQuery, after_seq: int) -> list[AuditEntry]:
        """Up to ``query.limit + 1`` entries after ``after_seq``: one more says there is a next page."""
        conditions: list[ColumnElement[bool]] = [audit_log.c.seq > after_seq]
        if query.actor is not None:
            conditions.append(audit_log.c.actor == query.actor)
        if query.task_id is not None:
            conditions.append(audit_log.c.task_id == query.task_id)
        if query.action is not None:
            conditions.append(audit_log.c.action == query.action)
        if query.since is not None:
            conditions.append(audit_log.c.occurred_at >= query.since)
        if query.until is not None:
            conditions.append(audit_log.c.occurred_at < query.until)
        stmt = select(audit_log).where(*conditions).order_by(audit_log.c.seq).limit(query.limit + 1)
        return [_entry(row) for row in self.conn.execute(stmt).mappings()]


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(**{name: row[name] for name in _FIELDS})


class SqlAuditUnitOfWork(SqlTransaction):
    """One transaction on the audit tables; nothing is kept unless :meth:`commit` is called."""

    audit: SqlAuditStore

    def consistent(self) -> Self:
        """Read the head and every entry in one snapshot, without stopping appenders (PostgreSQL;
        SQLite's BEGIN IMMEDIATE already keeps writers out for the length of the read)."""
        self.isolation_level = "REPEATABLE READ"
        return self

    def _bind(self, conn: Connection) -> None:
        self.audit = SqlAuditStore(conn)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            self.isolation_level = None
