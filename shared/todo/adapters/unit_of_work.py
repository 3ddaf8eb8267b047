"""One database transaction: the change, its outbox rows, and a kick to the relay after commit."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.engine import Connection, Engine, Transaction

from .outbox import OutboxStore
from .repository import SqlTaskRepository


class SqlUnitOfWork:
    """Nothing is kept unless :meth:`commit` is called; leaving the block rolls back the rest."""

    tasks: SqlTaskRepository
    outbox: OutboxStore

    def __init__(self, engine: Engine, after_commit: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.after_commit = after_commit
        self._conn: Connection | None = None
        self._tx: Transaction | None = None
        self._wrote_events = False

    def __enter__(self) -> SqlUnitOfWork:
        self._conn = self.engine.connect()
        self._tx = self._conn.begin()
        self.tasks = SqlTaskRepository(self._conn)
        self.outbox = OutboxStore(self._conn)
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
        self._tx.commit()
        if self.after_commit is not None:
            self.after_commit()
