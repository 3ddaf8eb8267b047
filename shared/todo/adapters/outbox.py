"""The transactional outbox: events are written with the change, and published after the commit.

Writers call :meth:`OutboxStore.add` inside their transaction. :class:`OutboxRelay` publishes pending
rows in order, marks them published, and keeps failed ones for the next sweep. Because the event id is
fixed when the row is written, a row published twice (crash after publish, before the mark) reaches
consumers with the same id, and they drop the duplicate by ``source`` + ``id``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..service.events import OutgoingEvent
from .tables import outbox

log = logging.getLogger(__name__)

# Any 64-bit number works; this one spells "todo-outbox" closely enough to recognise in pg_locks.
_RELAY_LOCK = 0x70D0_0B0C


Message = tuple[str, dict[str, Any]]
"""A partition key and the CloudEvent to publish under it."""


class Publisher(Protocol):
    def publish_many(self, topic: str, messages: Sequence[Message]) -> None:
        """Deliver these CloudEvents to one topic in this order, or raise.

        Must not return before the broker has every one. On a raise the relay publishes them all
        again later; consumers drop what they already had by ``source`` + ``id``.
        """


class OutboxStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, events: Sequence[OutgoingEvent], now: datetime) -> None:
        """Keep the events, in this order, in one statement."""
        self.conn.execute(insert(outbox).values([
            {"event_id": event.id, "topic": event.topic, "partition_key": event.partition_key,
             "payload": event.payload(), "created_at": now}
            for event in events
        ]))


class OutboxRelay:
    """Publishes pending outbox rows; safe to run from many threads and processes at once.

    Only one relay drains at a time (a PostgreSQL advisory lock, or a process lock on SQLite), which
    keeps each user's events in commit order on the wire.
    """

    def __init__(self, engine: Engine, publisher: Publisher, *, batch: int = 500,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.publisher = publisher
        self.batch = batch
        self.clock = clock
        self._local = threading.Lock()
        self._kicked = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> int:
        """Publish every pending row; returns how many were published. Stops at the first failure.

        Each batch goes out as one request per topic (commit order kept within the topic, which is
        all a consumer can see) and is marked in one statement: a row at a time, the relay fell
        behind a hundred changes a second. No database transaction stays open while publishing: an
        in-process subscriber writes to the same database (SQLite allows one writer), and a slow
        broker must not hold row locks.
        """
        published = 0
        with self._local, self._session() as conn:
            while True:
                rows = self._pending_batch(conn)
                by_topic: dict[str, list[Any]] = {}
                for row in rows:
                    by_topic.setdefault(row.topic, []).append(row)
                for topic, topic_rows in by_topic.items():
                    ids = [row.id for row in topic_rows]
                    try:
                        self.publisher.publish_many(
                            topic, [(row.partition_key, json.loads(row.payload)) for row in topic_rows])
                    except Exception as exc:  # the broker is down or refused: keep the rows, try next sweep
                        first = json.loads(topic_rows[0].payload)
                        log.warning("outbox publish failed; the rows stay pending for the next drain",
                                    extra={"topic": topic, "rows": len(ids), "outbox_ids": ids[:10],
                                           "ce_id": first.get("id"), "ce_source": first.get("source")},
                                    exc_info=exc)
                        self._mark(conn, ids, attempts=outbox.c.attempts + 1, last_error=repr(exc)[:2000])
                        return published
                    self._mark(conn, ids, published_at=self.clock())
                    published += len(ids)
                if len(rows) < self.batch:
                    return published

    @contextmanager
    def _session(self) -> Iterator[Connection]:
        """One connection for a whole drain (one pool checkout and pre-ping, not one per statement),
        committing after each statement so that none stays open while publishing. On PostgreSQL it
        holds a session advisory lock across those commits: one drainer across processes keeps commit
        order on the wire (SQLite has one process, and self._local serialises its threads)."""
        with self.engine.connect() as conn:
            locked = conn.dialect.name == "postgresql"
            if locked:
                conn.execute(select(func.pg_advisory_lock(_RELAY_LOCK)))
                conn.commit()
            try:
                yield conn
            finally:
                if locked:
                    conn.execute(select(func.pg_advisory_unlock(_RELAY_LOCK)))
                    conn.commit()

    def _pending_batch(self, conn: Connection) -> list[Any]:
        rows = list(conn.execute(
            select(outbox.c.id, outbox.c.topic, outbox.c.partition_key, outbox.c.payload)
            .where(outbox.c.published_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self.batch)
        ))
        conn.commit()
        return rows

    @staticmethod
    def _mark(conn: Connection, row_ids: list[int], **values: Any) -> None:
        conn.execute(update(outbox).where(outbox.c.id.in_(row_ids)).values(**values))
        conn.commit()

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            ).scalar_one())

    # -- background operation -----------------------------------------------------------------------

    def kick(self) -> None:
        """Ask the background thread to drain now (called right after a commit)."""
        self._kicked.set()

    def start(self, sweep_seconds: float) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(sweep_seconds,), name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._kicked.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self, sweep_seconds: float) -> None:
        while not self._stop.is_set():
            self._kicked.wait(sweep_seconds)
            self._kicked.clear()
            try:
                self.drain()
            except Exception:  # the database is away; the next sweep tries again
                log.exception("outbox sweep failed")
        try:
            self.drain()  # flush what the last requests committed before the process goes
        except Exception:
            log.exception("final outbox drain failed")
