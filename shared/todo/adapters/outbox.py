"""The transactional outbox: events are written with the change, and published after the commit.

Writers call :meth:`OutboxStore.add` inside their transaction. :class:`OutboxRelay` publishes pending
rows in order, marks them published, and keeps failed ones for the next sweep. Because the event id is
fixed when the row is written, a row published twice (crash after publish, before the mark) reaches
consumers with the same id, and they drop the duplicate by ``source`` + ``id``.

With the in-process bus the relay also plays daprd's part in the delivery contract: a row a subscriber
asks to retry waits with a growing backoff (``next_attempt_at``) and, after :class:`RetryPolicy`'s budget,
becomes a dead letter; a row it refuses (DROP) becomes one at once. Meanwhile the rows of other partition
keys (other users) flow past it, and the later rows of its own key wait behind it: per-user order holds
for what is delivered, and one user's poison holds up nobody else.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Executable, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from .. import metrics, tracing
from ..service.dead_letters import DeadLetter, reason_of
from ..service.events import SELF_ORDERED_TOPICS, OutgoingEvent
from .db import execute_prepared
from .dead_letters import SqlDeadLetters
from .tables import outbox

log = logging.getLogger(__name__)

# Any 64-bit number works; this one spells "todo-outbox" closely enough to recognise in pg_locks.
_RELAY_LOCK = 0x70D0_0B0C


# The drain's statements as pg8000 prepares them (see OutboxRelay._execute; each has its SQLAlchemy twin).
# Lists go as JSON, as in todo.adapters.drafts.
_LOCK = "SELECT pg_advisory_lock($1::bigint)"
_UNLOCK = "SELECT pg_advisory_unlock($1::bigint)"
_PENDING = """\
SELECT id, topic, partition_key, payload, attempts, next_attempt_at, traceparent, created_at FROM outbox
WHERE published_at IS NULL AND id > $1::bigint AND ($2::jsonb ? topic) = $3::boolean
AND id NOT IN (SELECT jsonb_array_elements_text($5::jsonb)::bigint)
ORDER BY id LIMIT $4::integer"""
_MARK_PUBLISHED = """\
UPDATE outbox SET published_at = $1::timestamptz, next_attempt_at = NULL
WHERE id IN (SELECT jsonb_array_elements_text($2::jsonb)::bigint)"""


class _Row(NamedTuple):
    """A pending outbox row, as the relay reads it."""

    id: int
    topic: str
    partition_key: str
    payload: str
    attempts: int
    next_attempt_at: datetime | None
    traceparent: str | None
    created_at: datetime


Message = tuple[str, dict[str, Any]]
"""A partition key and the CloudEvent to publish under it."""


@dataclass(frozen=True)
class Undelivered:
    """A message of a ``publish_many`` call that a subscriber did not take (only an in-process bus knows)."""

    index: int  # its place in the call
    consumer: str | None  # the subscriber; None: not offered, an earlier message of its key waits
    reason: str
    final: bool = False  # refused for good (DROP): a dead letter now, never retried


class Publisher(Protocol):
    def publish_many(self, topic: str, messages: Sequence[Message]) -> Sequence[Undelivered]:
        """Deliver these CloudEvents to one topic, or raise; returns what was not taken.

        Must not return before the broker has every one (a broker takes them all, or the call raises:
        nothing is returned). The broker may store them in any order, and a call that raised may have
        stored some: the relay never puts two messages of one partition key in one call, and publishes
        them all again later; consumers drop what they already had by ``source`` + ``id``.
        """


@dataclass(frozen=True)
class RetryPolicy:
    """How long the relay keeps offering a row a subscriber asks to retry: ``attempts`` in all, the n-th
    retry ``first_delay·2ⁿ⁻¹`` seconds (at most ``max_delay``) after the previous one; about 35 s by
    default, as daprd's budget is about a minute. Only transient failures use it: a consumer answers
    poison with DROP, after its own few local attempts."""

    attempts: int = 8
    first_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2.0 ** max(0, attempt - 1)))


def _waves(rows: list[Any], held: set[tuple[str, str]]) -> Iterator[list[Any]]:
    """The rows of one topic in waves that hold at most one row per partition key, in commit order.

    A broker may store the entries of one request in any order (Dapr's bulk publish promises none, and
    the Kafka client inside daprd reorders a batch it retries after a broker restart). Within a wave
    that harms nobody: no two entries share a key. The next wave is sent only once the broker has
    confirmed the previous one, so a key's later row never reaches Kafka before its earlier one, even
    when a request fails or is retried. A key held by a waiting row (``held`` grows while the waves go
    out) sends nothing more in this drain.
    """
    by_key: dict[str, list[Any]] = {}  # each key's rows in commit order: wave n holds each key's n-th row
    for row in rows:
        by_key.setdefault(row.partition_key, []).append(row)
    queues = list(by_key.values())
    depth = 0
    while queues:
        wave = [q[depth] for q in queues if (q[depth].topic, q[depth].partition_key) not in held]
        if not wave:
            return
        yield wave
        depth += 1
        queues = [q for q in queues if depth < len(q)]


def _lane(rows: list[Any], held: set[tuple[str, str]], self_ordered: bool) -> Iterator[list[Any]]:
    """The requests of one topic's rows, in the order they must go: waves (:func:`_waves`), or, for a topic
    whose consumer orders a key's events itself, one request of every row whose key is not held."""
    if not self_ordered:
        yield from _waves(rows, held)
        return
    free = [row for row in rows if (row.topic, row.partition_key) not in held]
    if free:
        yield free


def _earliest(known: datetime | None, other: datetime) -> datetime:
    return other if known is None else min(known, other)


# The requests a drain has under way: what settling each answer needs, with the time it was sent.
_Calls = dict[Future[Sequence[Undelivered]], tuple[str, list[Any], list[Message], datetime]]


class _Inline(Executor):
    """Runs each call at once on the caller's thread: an in-process bus's subscribers write to the same
    database as the relay (SQLite has one writer), so topics go one after the other there."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


@dataclass(eq=False)
class _Drainer:
    """One drainer of the outbox's rows of some topics: its own lock (advisory on PostgreSQL), thread and
    wake-up, so that a long drain of the others' waves never holds its rows back."""

    name: str
    topics: frozenset[str]  # with ``inside``, which rows it takes: those of these topics, or of all others
    inside: bool
    lock_id: int
    local: threading.Lock = field(default_factory=threading.Lock)
    kicked: threading.Event = field(default_factory=threading.Event)
    kicks: int = 0  # how often a commit kicked it (a change counts, not the number)
    next_retry_at: datetime | None = None  # the earliest row waiting for its retry, after a drain
    thread: threading.Thread | None = None

    @cached_property
    def topics_json(self) -> str:
        """``topics`` as the prepared pending select takes them."""
        return json.dumps(sorted(self.topics))


def _publish_span(topic: str, messages: Sequence[Message]) -> AbstractContextManager[Any]:
    """A producer span in the trace of the (first) change published, linked to the others' (none untraced)."""
    traces = [str(m[1]["traceparent"]) for m in messages if m[1].get("traceparent")]
    if not traces:
        return nullcontext()
    return tracing.span(f"publish {topic}", kind="producer", parent=traces[0], links=traces[1:],
                        attributes={"messaging.destination.name": topic,
                                    "messaging.batch.message_count": len(messages)})


class OutboxStore:
    def __init__(self, conn: Connection, queued: set[str] | None = None) -> None:
        self.conn = conn
        self.queued = set() if queued is None else queued  # the topics written: the kick after the commit

    def add(self, events: Sequence[OutgoingEvent], now: datetime) -> None:
        """Keep the events, in this order, in one statement (todo.adapters.db: insertmanyvalues), with the
        trace context of the span writing them."""
        self.queued.update(event.topic for event in events)
        traceparent = tracing.current_traceparent()
        self.conn.execute(insert(outbox), [
            {"event_id": event.id, "topic": event.topic, "partition_key": event.partition_key,
             "payload": event.payload(), "created_at": now, "traceparent": traceparent}
            for event in events
        ])


class OutboxRelay:
    """Publishes pending outbox rows; safe to run from many threads and processes at once.

    Only one relay drains at a time (a PostgreSQL advisory lock, or a process lock on SQLite), which
    keeps each user's events in commit order on the wire. ``parallel_topics``, for a broker that takes
    calls from several threads (daprd): the self-ordered topics have a drainer of their own beside the
    others', with up to ``in_flight`` requests under way at once, and the other topics of a batch go out
    side by side (each topic's requests still one after the other); the database work stays on each
    drainer's thread.
    """

    def __init__(self, engine: Engine, publisher: Publisher, *, batch: int = 500,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 retry: RetryPolicy = RetryPolicy(), function: str = "todo", parallel_topics: bool = False,
                 self_ordered: frozenset[str] = SELF_ORDERED_TOPICS, in_flight: int = 4) -> None:
        self.engine = engine
        self.function = function  # the metrics' label
        self.publisher = publisher
        self.batch = batch
        self.clock = clock
        self.retry = retry
        self.self_ordered = self_ordered
        self.parallel_topics = parallel_topics
        self.in_flight = in_flight  # requests under way at once in the self-ordered topics' drain
        # Those and one request per other topic (task-events, reminders) side by side.
        self._calls: Executor = ThreadPoolExecutor(in_flight + 2, "outbox-publish") if parallel_topics else _Inline()
        if parallel_topics and self_ordered:
            self._drainers = [_Drainer("outbox-relay", self_ordered, False, _RELAY_LOCK),
                              _Drainer("outbox-relay-self-ordered", self_ordered, True, _RELAY_LOCK + 1)]
        else:
            self._drainers = [_Drainer("outbox-relay", frozenset(), False, _RELAY_LOCK)]
        # pg8000: the drain's own statements prepared on its connection, outside transaction blocks (one round
        # trip each, not five); the rare ones (failures, dead letters) stay SQLAlchemy's.
        self._prepared = engine.dialect.driver == "pg8000"
        self._stop = threading.Event()

    @property
    def next_retry_at(self) -> datetime | None:
        """The earliest row waiting for its retry, after the last drains."""
        return min((d.next_retry_at for d in self._drainers if d.next_retry_at is not None), default=None)

    def drain(self) -> int:
        """Publish every pending row that may go now (each drainer's in turn); returns how many were
        delivered."""
        return sum(self._drain_one(drainer) for drainer in self._drainers)

    def _drain_one(self, drainer: _Drainer) -> int:
        return self._drain_overlapping(drainer) if drainer.inside else self._drain(drainer)

    def _drain(self, drainer: _Drainer) -> int:
        """Publish every pending row that may go now; returns how many were delivered.

        Each batch goes out per topic in waves of at most one row per partition key (see
        :func:`_waves`), a request per wave, and the batch's delivered rows are marked in one statement
        at its end: a request per row, the relay fell behind a hundred changes a second; one request for
        the whole batch let the broker reorder a key's rows; a mark per wave, it fell behind 8 users
        creating 100 tasks a second (bench T1). A crash before the mark publishes the batch again, in
        order, and consumers drop what they had by ``source`` + ``id``. A topic whose consumer orders a
        key's events itself (``SELF_ORDERED_TOPICS``) goes in one request per batch, drained beside the
        others (``parallel_topics``): with waves of 10 to 40 ms through daprd, 4 users creating 100
        tasks a second made each drain ~45 requests long, 1.4 s, and the pushes waited for it (bench P3).

        No database transaction stays open while publishing: an in-process subscriber writes to the same
        database (SQLite allows one writer), and a slow broker must not hold row locks. A broker that
        refuses the call keeps every row for the next drain; a row that a subscriber did not take waits
        alone, with the later rows of its key.
        """
        published = 0
        held: set[tuple[str, str]] = set()  # (topic, partition key) behind a row that waits
        next_retry: datetime | None = None
        with drainer.local, self._session(drainer.lock_id) as conn:
            after = 0
            while True:
                rows = self._pending_batch(conn, after, drainer)
                by_topic, retry_at = self._due(rows, held)
                if retry_at is not None:
                    next_retry = _earliest(next_retry, retry_at)
                taken: list[int] = []  # delivered in this batch, marked in one statement once it is through
                try:
                    refused, retry_at = self._send(conn, by_topic, held, taken)
                    if refused:  # the broker refused: nothing later may overtake what failed
                        drainer.next_retry_at = None
                        return published + len(taken)
                    if retry_at is not None:
                        next_retry = _earliest(next_retry, retry_at)
                finally:
                    if taken:
                        self._mark_published(conn, taken)
                published += len(taken)
                if len(rows) < self.batch:
                    drainer.next_retry_at = next_retry
                    return published
                after = rows[-1].id

    def _due(self, rows: list[_Row], held: set[tuple[str, str]]) -> tuple[dict[str, list[_Row]], datetime | None]:
        """The rows that may go now, by topic; a row waiting for its retry holds its key (``held`` grows), and
        the earliest such retry."""
        now = self.clock()
        by_topic: dict[str, list[_Row]] = {}
        next_retry: datetime | None = None
        for row in rows:
            key = (row.topic, row.partition_key)
            if key in held:
                continue
            if row.next_attempt_at is not None and row.next_attempt_at > now:
                held.add(key)
                next_retry = _earliest(next_retry, row.next_attempt_at)
                continue
            by_topic.setdefault(row.topic, []).append(row)
        return by_topic, next_retry

    def _drain_overlapping(self, drainer: _Drainer) -> int:
        """The self-ordered topics' drain (``parallel_topics``): their consumers order a key's events
        themselves, so a row need not wait for the broker's answer to the rows before it. Up to
        ``self.in_flight`` requests are under way at once, each of the rows committed since the one before:
        through daprd a publish takes 3 ms at its median but 15 to 70 ms at its p99, and the rows committed
        meanwhile waited for its answer before they were even selected (bench P3's tail). A row under way
        is never selected again; a request's rows are marked once its answer is in, and a request the broker
        refuses keeps its rows for the next drain, which this one leaves to the sweep once the requests
        still under way are settled. The drain ends when nothing is under way or pending: once the last
        answer is in, it selects again only if a commit kicked it since its last select (a select per drain
        saved: the kick follows each commit of this process; the others' rows wait for the sweep, as ever)."""
        published = 0
        under_way: _Calls = {}
        sending: set[int] = set()  # the ids of the rows under way
        held: set[tuple[str, str]] = set()  # as in _drain, for one pass over the pending rows
        next_retry: datetime | None = None
        refused = False
        after = 0  # where the pass over the pending rows goes on; 0 starts the next one
        owed = True  # a select: at the start, after a full page, and when a retry falls due
        kicks = -1  # the commits' kicks as the last select began; a kick since then also owes one
        with drainer.local, self._session(drainer.lock_id) as conn:
            while True:
                drainer.kicked.clear()  # from here on, a commit or an answer ends the wait below
                for future in [f for f in under_way if f.done()]:
                    topic, rows, messages, sent_at = under_way.pop(future)
                    sending.difference_update(row.id for row in rows)
                    delivered = self._settle_call(conn, topic, rows, messages, sent_at, future, held)
                    if delivered is None:
                        refused = True
                        continue
                    ids, retry_at = delivered
                    if ids:
                        self._mark_published(conn, ids)
                        published += len(ids)
                    if retry_at is not None:
                        next_retry = _earliest(next_retry, retry_at)
                if not refused and len(under_way) < self.in_flight and (owed or drainer.kicks != kicks):
                    kicks = drainer.kicks
                    if after == 0:
                        held, next_retry = set(), None
                    rows = self._pending_batch(conn, after, drainer, sending)
                    owed = len(rows) == self.batch
                    after = rows[-1].id if owed else 0
                    by_topic, retry_at = self._due(rows, held)
                    if retry_at is not None:
                        next_retry = _earliest(next_retry, retry_at)
                    for topic, topic_rows in by_topic.items():
                        for request in _lane(topic_rows, held, True):
                            readable, messages = self._readable(conn, request)
                            if readable:
                                sending.update(row.id for row in readable)
                                self._submit(under_way, topic, readable, messages).add_done_callback(
                                    lambda _: drainer.kicked.set())
                if not under_way:
                    if refused or not (owed or drainer.kicks != kicks):
                        drainer.next_retry_at = None if refused else next_retry
                        return published
                    continue
                timeout = None if next_retry is None else max(0.01, (next_retry - self.clock()).total_seconds())
                if not drainer.kicked.wait(timeout):
                    owed = True  # a row's retry is due

    def _send(self, conn: Connection, by_topic: dict[str, list[Any]], held: set[tuple[str, str]],
              taken: list[int]) -> tuple[bool, datetime | None]:
        """Every topic's requests (:func:`_lane`), a topic's one after another once the broker confirmed the
        previous one, the topics side by side; adds the delivered rows to ``taken``. Whether the broker
        refused a request (its topic sends nothing more; the others' calls under way are settled), and the
        earliest retry a row asked for."""
        lanes = {topic: _lane(rows, held, topic in self.self_ordered) for topic, rows in by_topic.items()}
        waiting = list(lanes)  # topics not begun: all begin at once side by side, else one after another
        in_flight: _Calls = {}

        def launch(topic: str) -> bool:
            """Send the topic's next request; False when it has none left."""
            for wave in lanes[topic]:
                topic_rows, messages = self._readable(conn, wave)
                if topic_rows:
                    self._submit(in_flight, topic, topic_rows, messages)
                    return True
            return False

        def begin() -> None:
            while waiting and (self.parallel_topics or not in_flight):
                launch(waiting.pop(0))

        begin()
        refused, next_retry = False, None
        while in_flight:
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                topic, topic_rows, messages, sent_at = in_flight.pop(future)
                delivered = self._settle_call(conn, topic, topic_rows, messages, sent_at, future, held)
                if delivered is None:
                    refused = True
                    continue
                ids, retry_at = delivered
                taken += ids
                if retry_at is not None:
                    next_retry = _earliest(next_retry, retry_at)
                if not refused and not launch(topic):
                    begin()
        return refused, next_retry

    def _submit(self, calls: _Calls, topic: str, rows: list[Any],
                messages: list[Message]) -> Future[Sequence[Undelivered]]:
        """One request on the pool, kept in ``calls`` for its answer to settle."""
        sent_at = self.clock()  # before the submit: an inline executor returns with the answer
        future = self._calls.submit(self._call, topic, messages)
        calls[future] = (topic, rows, messages, sent_at)
        return future

    def _call(self, topic: str, messages: list[Message]) -> Sequence[Undelivered]:
        with _publish_span(topic, messages):
            return self.publisher.publish_many(topic, messages)

    def _settle_call(self, conn: Connection, topic: str, topic_rows: list[Any], messages: list[Message],
                     sent_at: datetime, call: Future[Sequence[Undelivered]],
                     held: set[tuple[str, str]]) -> tuple[list[int], datetime | None] | None:
        """The outcome of one request: the rows delivered (for the caller to mark) and the earliest retry a
        row asked for, or None when the broker refused the request (rows kept)."""
        ids = [row.id for row in topic_rows]
        exc = call.exception()
        if exc is not None:  # the broker is down or refused: keep the rows, try next sweep
            if not isinstance(exc, Exception):
                raise exc
            metrics.OUTBOX_FAILURES.inc(function=self.function, topic=topic)
            first = messages[0][1]
            log.warning("outbox publish failed; the rows stay pending for the next drain",
                        extra={"topic": topic, "rows": len(ids), "outbox_ids": ids[:10],
                               "ce_id": first.get("id"), "ce_source": first.get("source"),
                               "error": repr(exc)[:500]},
                        exc_info=exc)
            self._mark(conn, ids, attempts=outbox.c.attempts + 1, last_error=repr(exc)[:2000])
            return None
        misses: dict[int, list[Undelivered]] = {}
        for miss in call.result() or ():
            misses.setdefault(miss.index, []).append(miss)
        taken = [row.id for index, row in enumerate(topic_rows) if index not in misses]
        if taken:
            metrics.OUTBOX_PUBLISHED.inc(len(taken), function=self.function, topic=topic)
            # Until the request went out, not until its answer: a consumer often has the event before the
            # producer has the broker's acknowledgement, and the hop after this one starts at the hand-over.
            for index, row in enumerate(topic_rows):
                if index not in misses:
                    metrics.OUTBOX_LAG.observe(max(0.0, (sent_at - row.created_at).total_seconds()),
                                               function=self.function, topic=topic)
        next_retry: datetime | None = None
        for index, row_misses in misses.items():
            row = topic_rows[index]
            waits, retry_at = self._settle(conn, row, row_misses)
            if waits:
                held.add((row.topic, row.partition_key))
            if retry_at is not None:
                next_retry = _earliest(next_retry, retry_at)
        return taken, next_retry

    def _readable(self, conn: Connection, rows: list[Any]) -> tuple[list[Any], list[Message]]:
        """The rows whose payload is a CloudEvent's JSON, with their messages. Our writers write nothing
        else, but a row that is not one must not stop the drain on every sweep: it is a dead letter."""
        readable, messages = [], []
        for row in rows:
            try:
                event = json.loads(row.payload)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                self._dead_letter(conn, row, row.payload, "outbox-relay", "the outbox row holds no CloudEvent JSON",
                                  row.attempts + 1, self.clock())
                self._mark(conn, [row.id], published_at=self.clock(), next_attempt_at=None)
                continue
            if row.traceparent and "traceparent" not in event:
                event["traceparent"] = row.traceparent  # the CloudEvents distributed-tracing extension
            readable.append(row)
            messages.append((row.partition_key, event))
        return readable, messages

    def _settle(self, conn: Connection, row: Any, misses: list[Undelivered]) -> tuple[bool, datetime | None]:
        """A row some subscriber did not take: dead letters for what was refused for good or has spent the
        budget. Whether the row still waits (holding back the later rows of its key), and for a retry of
        its own, when it is due."""
        now = self.clock()
        event = json.loads(row.payload)
        for miss in misses:
            if miss.final:
                self._dead_letter(conn, row, event, miss.consumer or "outbox-relay", miss.reason,
                                  row.attempts + 1, now)
        retrying = [m for m in misses if not m.final and m.consumer is not None]
        if not retrying:
            if any(m.consumer is None for m in misses):
                return True, None  # not offered: it waits behind an earlier row of its key, as it was
            self._mark(conn, [row.id], published_at=now, next_attempt_at=None)
            return False, None
        attempts = row.attempts + 1
        last = "; ".join(f"{m.consumer}: {m.reason}" for m in retrying)[:2000]
        if attempts >= self.retry.attempts:
            for miss in retrying:
                self._dead_letter(conn, row, event, miss.consumer or "outbox-relay",
                                  f"retry budget spent ({attempts} attempts); last: {miss.reason}", attempts, now)
            self._mark(conn, [row.id], attempts=attempts, last_error=last, published_at=now, next_attempt_at=None)
            return False, None
        retry_at = now + timedelta(seconds=self.retry.delay(attempts))
        self._mark(conn, [row.id], attempts=attempts, last_error=last, next_attempt_at=retry_at)
        log.warning("a subscriber asked to retry; the row waits, the rows of other keys go on",
                    extra={"outbox_id": row.id, "ce_id": event.get("id"), "attempts": attempts,
                           "retry_at": retry_at.isoformat(), "reason": last[:200]})
        return True, retry_at

    @staticmethod
    def _dead_letter(conn: Connection, row: Any, event: dict[str, Any] | str, consumer: str, reason: str,
                     attempts: int, now: datetime) -> None:
        letter = DeadLetter(consumer, row.topic, event, reason_of(reason), attempts, now)
        SqlDeadLetters(conn).add(letter)
        conn.commit()
        log.warning("dead letter", extra={"consumer": consumer, "ce_id": letter.event_id, "outbox_id": row.id,
                                          "reason": letter.reason, "attempts": attempts})

    @contextmanager
    def _session(self, lock_id: int) -> Iterator[Connection]:
        """One connection for a whole drain (one pool checkout, not one per statement), committing after
        each statement so that none stays open while publishing. On PostgreSQL it holds a session advisory
        lock across those commits: one drainer across processes keeps commit order on the wire (SQLite has
        one process, and the drainer's local lock serialises its threads)."""
        with self.engine.connect() as conn:
            locked = conn.dialect.name == "postgresql"
            if locked:
                self._execute(conn, _LOCK, lambda: select(func.pg_advisory_lock(lock_id)), (lock_id,))
            try:
                yield conn
            finally:
                if locked:
                    self._execute(conn, _UNLOCK, lambda: select(func.pg_advisory_unlock(lock_id)), (lock_id,))

    def _execute(self, conn: Connection, sql: str, statement: Callable[[], Executable],
                 params: Sequence[Any]) -> list[Any]:
        """One of the drain's statements: ``sql`` prepared (pg8000), or else SQLAlchemy's ``statement()``, the
        same, committed. Built only where it runs: on pg8000, building them cost create-task 9 % of its CPU
        at bench P3's load (py-spy)."""
        if self._prepared:
            return execute_prepared(conn.connection, sql, params)
        result = conn.execute(statement())
        rows = list(result) if result.returns_rows else []
        conn.commit()
        return rows

    def _pending_batch(self, conn: Connection, after: int, drainer: _Drainer,
                       under_way: Collection[int] = ()) -> list[_Row]:
        """The drainer's next pending rows after ``after``, but for those ``under_way`` (sent, not answered)."""

        def statement() -> Executable:
            topics = outbox.c.topic.in_(drainer.topics) if drainer.inside else outbox.c.topic.not_in(drainer.topics)
            pending = (select(*(outbox.c[name] for name in _Row._fields))
                       .where(outbox.c.published_at.is_(None), outbox.c.id > after, topics)
                       .order_by(outbox.c.id)
                       .limit(self.batch))
            return pending.where(outbox.c.id.not_in(list(under_way))) if under_way else pending

        params = (after, drainer.topics_json, drainer.inside, self.batch, json.dumps(list(under_way)))
        return [_Row(*row) for row in self._execute(conn, _PENDING, statement, params)]

    def _mark_published(self, conn: Connection, row_ids: list[int]) -> None:
        """The hot one of :meth:`_mark`: delivered rows."""
        at = self.clock()
        self._execute(conn, _MARK_PUBLISHED, lambda: update(outbox).where(outbox.c.id.in_(row_ids)).values(
            published_at=at, next_attempt_at=None), (at, json.dumps(row_ids)))

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

    def kick(self, topics: Collection[str] | None = None) -> None:
        """Ask the background threads to drain now (called right after a commit): those that take rows of
        ``topics`` (the commit's), or all. A drainer kicked by a commit that wrote none of its rows only
        locks, finds nothing and unlocks: on-reminder's notifications, which write task-updates rows only,
        made 2,000 of the 3,700 drains of its reminders in bench P5's minute."""
        for drainer in self._drainers:
            if topics is None or any((topic in drainer.topics) == drainer.inside for topic in topics):
                drainer.kicks += 1
                drainer.kicked.set()

    def start(self, sweep_seconds: float) -> None:
        for drainer in self._drainers:
            if drainer.thread is None:
                drainer.thread = threading.Thread(target=self._run, args=(drainer, sweep_seconds),
                                                  name=drainer.name, daemon=True)
                drainer.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.kick()
        for drainer in self._drainers:
            if drainer.thread is not None:
                drainer.thread.join(timeout)
                drainer.thread = None
        self._calls.shutdown(wait=False)

    def _run(self, drainer: _Drainer, sweep_seconds: float) -> None:
        while not self._stop.is_set():
            wait = sweep_seconds
            if drainer.next_retry_at is not None:  # a row waits for its retry: come back for it in time
                wait = min(wait, max(0.01, (drainer.next_retry_at - self.clock()).total_seconds()))
            drainer.kicked.wait(wait)
            drainer.kicked.clear()
            try:
                self._drain_one(drainer)
            except Exception:  # the database is away; the next sweep tries again
                log.exception("outbox sweep failed")
        try:
            self._drain_one(drainer)  # flush what the last requests committed before the process goes
        except Exception:
            log.exception("final outbox drain failed")
