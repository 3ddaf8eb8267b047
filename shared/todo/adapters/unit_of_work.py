"""One database transaction: the change, its outbox rows, and a kick to the relay after commit."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine, Transaction

from .change_feed import SqlChangeFeed
from .idempotency import claim
from .outbox import OutboxStore
from .reminder_store import SqlReminderStore
from .repository import SqlTaskRepository


class SqlTransaction:
    """One database transaction; nothing is kept unless :meth:`commit` is called.

    Subclasses bind their repositories to the connection in :meth:`_bind`.
    """

    def __init__(self, engine: Engine, after_commit: Callable[[Collection[str]], None] | None = None,
                 isolation_level: str | None = None, read_only: bool = False) -> None:
        self.engine = engine
        self.after_commit = after_commit  # told the outbox topics the transaction wrote (the relay's kick)
        self.queued: set[str] = set()
        self.isolation_level = isolation_level
        self.read_only = read_only
        self._conn: Connection | None = None
        self._tx: Transaction | None = None

    def _bind(self, conn: Connection) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.queued = set()
        self._conn = self.engine.connect()
        if self.read_only and self._conn.dialect.name == "sqlite":
            # A read is one statement: in autocommit it does not take the write lock that every
            # other transaction takes up front (BEGIN IMMEDIATE), so it never waits for a writer.
            # On PostgreSQL reads never wait for writers, and the pool's pre-ping has already opened
            # the transaction the read runs in (pg8000 begins one implicitly).
            self._conn.execution_options(isolation_level="AUTOCOMMIT")
        elif self.isolation_level is not None and self._conn.dialect.name == "postgresql":
            self._conn.execution_options(isolation_level=self.isolation_level)
        self._tx = self._conn.begin()
        self._bind(self._conn)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._conn is not None and self._tx is not None
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self._conn.close()

    def commit(self) -> None:
        assert self._tx is not None
        if self.read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        self._tx.commit()
        if self.after_commit is not None and self.queued:
            self.after_commit(frozenset(self.queued))


class SqlUnitOfWork(SqlTransaction):
    """Tasks and their outbox rows, committed together."""

    tasks: SqlTaskRepository
    outbox: OutboxStore
    reminders: SqlReminderStore
    changes: SqlChangeFeed

    def _bind(self, conn: Connection) -> None:
        self.tasks = SqlTaskRepository(conn)
        self.outbox = OutboxStore(conn, self.queued)
        self.reminders = SqlReminderStore(conn)
        self.changes = SqlChangeFeed(conn, self.queued)

    def claim(self, consumer: str, source: str, event_id: str, now: datetime) -> bool:
        assert self._conn is not None
        return claim(self._conn, consumer, source, event_id, now)
