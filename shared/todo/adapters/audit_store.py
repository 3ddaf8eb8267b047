"""The audit trail in SQL: the append-only log, its chains' heads, and a unit of work around them."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import JSON, ColumnElement, func, insert, select, text, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import TextClause

from ..domain.audit import GENESIS_HASH, AuditEntry, ChainHead, Unreadable
from ..service.audit import AuditQuery
from .db import upsert
from .idempotency import claim_many
from .tables import AUDIT_SEQ, audit_chain_heads, audit_log
from .unit_of_work import SqlTransaction

_FIELDS = tuple(c.name for c in audit_log.columns)
_HEADS = select(audit_chain_heads.c.chain, audit_chain_heads.c.length, audit_chain_heads.c.hash)


class SqlAuditStore:
    def __init__(self, conn: Connection, batch: int = 1000) -> None:
        self.conn = conn
        self.batch = batch

    def claim_many(self, consumer: str, events: Iterable[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        return claim_many(self.conn, consumer, events, now)

    # -- the chains' heads ----------------------------------------------------------------------------

    def lock_heads(self, chains: Sequence[int], now: datetime) -> dict[int, ChainHead]:
        """Read the chains' heads and hold them until the transaction ends: a chain's appenders take turns.

        On PostgreSQL those are row locks, taken in chain order (the rows are locked as the ordered scan
        returns them); on SQLite every write transaction already holds the database's write lock.
        """
        stmt = _HEADS.where(audit_chain_heads.c.chain.in_(chains)).order_by(audit_chain_heads.c.chain)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        heads = {row.chain: ChainHead(row.length, row.hash) for row in self.conn.execute(stmt)}
        if len(heads) < len(chains):  # a chain's first append: whoever creates its head, everyone then locks it
            self.conn.execute(upsert(self.conn, audit_chain_heads).values(
                [{"chain": c, "length": 0, "hash": GENESIS_HASH, "updated_at": now} for c in chains if c not in heads]
            ).on_conflict_do_nothing())
            heads = {row.chain: ChainHead(row.length, row.hash) for row in self.conn.execute(stmt)}
        return heads

    def heads(self) -> dict[int, ChainHead]:
        return {row.chain: ChainHead(row.length, row.hash) for row in self.conn.execute(_HEADS)}

    def next_seqs(self, count: int) -> list[int]:
        """On PostgreSQL from the sequence (appenders of other chains draw from it at once); on SQLite,
        whose one writer holds the database, after the highest recorded."""
        if self.conn.dialect.name == "postgresql":
            return list(self.conn.execute(text(f"SELECT nextval('{AUDIT_SEQ}') FROM generate_series(1, :n)"),
                                          {"n": count}).scalars())
        last = self.conn.execute(select(func.coalesce(func.max(audit_log.c.seq), 0))).scalar_one()
        return list(range(last + 1, last + 1 + count))

    # -- entries -------------------------------------------------------------------------------------

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Insert the entries and move each chain's head onto its last (the caller holds their locks)."""
        if not entries:
            return
        if self.conn.dialect.name == "postgresql":
            rows = json.dumps([_row(entry) for entry in entries], ensure_ascii=False)
            self.conn.execute(_append_statement(), {"rows": rows})
        else:
            # RETURNING makes SQLAlchemy batch the rows into multi-row VALUES ("insertmanyvalues", one
            # statement compiled once); without it executemany is a round trip per entry.
            self.conn.execute(insert(audit_log).returning(audit_log.c.seq),
                              [{name: getattr(entry, name) for name in _FIELDS} for entry in entries])
        by_chain: dict[int, list[AuditEntry]] = {}
        for entry in entries:
            by_chain.setdefault(entry.chain, []).append(entry)
        for chain, appended in sorted(by_chain.items()):
            first, last = appended[0], appended[-1]
            moved = self.conn.execute(
                update(audit_chain_heads)
                .where(audit_chain_heads.c.chain == chain, audit_chain_heads.c.length == first.place - 1,
                       audit_chain_heads.c.hash == first.prev_hash)
                .values(length=last.place, hash=last.hash, updated_at=last.recorded_at)
            )
            if moved.rowcount != 1:
                raise RuntimeError(f"chain {chain}'s head moved under entry {first.seq}; was its lock taken?")

    def chains(self) -> list[int]:
        found = set(self.conn.execute(select(audit_chain_heads.c.chain)).scalars())
        found.update(self.conn.execute(select(audit_log.c.chain).distinct()).scalars())
        return sorted(found)

    def task_entries(self, task_id: int, actor: str | None = None) -> list[AuditEntry]:
        stmt = select(audit_log).where(audit_log.c.task_id == task_id)
        if actor is not None:
            stmt = stmt.where(audit_log.c.actor == actor)
        return [_entry(row) for row in self.conn.execute(stmt.order_by(audit_log.c.seq)).mappings()]

    def entries(self, chain: int) -> Iterator[AuditEntry | Unreadable]:
        """The chain's entries in ``seq`` order, read in keyset batches (the trail may not fit in memory).
        A batch holding a row that does not read back as an entry is read again row by row, and that
        row is :class:`Unreadable`: the verifier reports it rather than fail on it."""
        after: Any = None
        while True:
            mine = audit_log.c.chain == chain
            stmt, window = select(audit_log).where(mine), select(audit_log.c.seq).where(mine)
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
        if query.chain is not None:
            conditions.append(audit_log.c.chain == query.chain)
        if query.since is not None:
            conditions.append(audit_log.c.occurred_at >= query.since)
        if query.until is not None:
            conditions.append(audit_log.c.occurred_at < query.until)
        stmt = select(audit_log).where(*conditions).order_by(audit_log.c.seq).limit(query.limit + 1)
        return [_entry(row) for row in self.conn.execute(stmt).mappings()]


_JSON = frozenset(c.name for c in audit_log.columns if isinstance(c.type, JSON))


@functools.cache
def _append_statement() -> TextClause:
    """PostgreSQL: a delivery's entries as one JSON parameter, so the statement's text is the same whatever
    their number. A multi-row VALUES has a text per row count: each was a fresh parameter scan in pg8000
    and a fresh entry in its statement cache (a fifth of audit-sink's samples under P7 load, py-spy).
    ``changes`` and ``state`` travel as their own JSON text, cast to json as sent: json_to_recordset
    would decode the strings inside them, and a task's text may hold an escaped NUL that text cannot."""
    from sqlalchemy.dialects import postgresql  # loaded already: only PostgreSQL's appends get here

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    record = ", ".join(f"{c.name} {'text' if c.name in _JSON else c.type.compile(dialect=dialect)}"
                       for c in audit_log.columns)
    values = ", ".join(f"CAST({name} AS json)" if name in _JSON else name for name in _FIELDS)
    return text(f"INSERT INTO audit_log ({', '.join(_FIELDS)}) SELECT {values} "
                f"FROM json_to_recordset(CAST(:rows AS json)) AS r({record})")


def _row(entry: AuditEntry) -> dict[str, Any]:
    """An entry as a record of :func:`_append_statement`."""
    row: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(entry, name)
        if name in _JSON:
            value = None if value is None else json.dumps(value)  # as SQLAlchemy's JSON type wrote it
        elif isinstance(value, datetime):
            value = value.isoformat()
        row[name] = value
    return row


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
