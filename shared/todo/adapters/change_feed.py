"""The per-user change feed: numbered in the writer's transaction, read back by push-update."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, delete, func, insert, literal, literal_column, select
from sqlalchemy.engine import Connection, Engine

from .. import tracing
from ..domain.principal import Principal
from ..service.events import OutgoingEvent, push_cloud_event
from .db import upsert
from .outbox import OutboxStore
from .tables import outbox, user_changes, user_seqs, ws_tickets

SEQ_PATH: Any = literal_column("'{seq}'::text[]")  # jsonb_set's path to the message's "seq"


class SqlChangeFeed:
    def __init__(self, conn: Connection, queued: set[str] | None = None) -> None:
        self.conn = conn
        self.queued = set() if queued is None else queued  # as OutboxStore's

    def append(self, user_id: str, message: dict[str, Any], now: datetime, event_id: str | None = None) -> None:
        """Number the message, keep it, and queue its push event (``task-updates``) in the outbox.

        The upsert holds the user's counter row until the transaction ends, so one user's changes get
        their numbers in commit order. On PostgreSQL the counter, the message and its outbox row are one
        statement (data-modifying CTEs; the seq written into the message by ``jsonb_set`` and into the
        event's text between the halves :func:`numbered_payload` cut): fewer round trips on every change
        (bench P2). SQLite has no data-modifying CTE: three statements there."""
        counter = upsert(self.conn, user_seqs).values(user_id=user_id, last_seq=1)
        counter = counter.on_conflict_do_update(index_elements=["user_id"],
                                                set_={"last_seq": user_seqs.c.last_seq + 1})
        counter = counter.returning(user_seqs.c.last_seq)
        if self.conn.dialect.name != "postgresql":
            seq = int(self.conn.execute(counter).scalar_one())
            self.conn.execute(insert(user_changes).values(user_id=user_id, seq=seq, message={**message, "seq": seq},
                                                          created_at=now))
            OutboxStore(self.conn, self.queued).add([push_cloud_event(user_id, {**message, "seq": seq}, event_id)], now)
            return
        event = push_cloud_event(user_id, {**message, "seq": 0}, event_id)
        self.queued.add(event.topic)
        head, tail = numbered_payload(event)
        numbered = counter.cte("numbered")
        seq_text = cast(numbered.c.last_seq, Text)
        fed = insert(user_changes).from_select(["user_id", "seq", "message", "created_at"], select(
            literal(user_id, user_changes.c.user_id.type), numbered.c.last_seq,
            func.jsonb_set(literal(message, user_changes.c.message.type), SEQ_PATH, func.to_jsonb(numbered.c.last_seq)),
            literal(now, user_changes.c.created_at.type)))
        queued = insert(outbox).from_select(
            ["event_id", "topic", "partition_key", "payload", "created_at", "traceparent"],
            select(literal(event.id, outbox.c.event_id.type), literal(event.topic, outbox.c.topic.type),
                   literal(event.partition_key, outbox.c.partition_key.type),
                   literal(head, Text) + seq_text + literal(tail, Text), literal(now, outbox.c.created_at.type),
                   literal(tracing.current_traceparent(), outbox.c.traceparent.type)))
        self.conn.execute(select(numbered.c.last_seq).add_cte(fed.cte("fed")).add_cte(queued.cte("queued")))

    def since(self, user_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(user_changes.c.message)
            .where(user_changes.c.user_id == user_id, user_changes.c.seq > after)
            .order_by(user_changes.c.seq).limit(limit))
        return [dict(r[0]) for r in rows]

    def last(self, user_id: str) -> int:
        row = self.conn.execute(select(user_seqs.c.last_seq).where(user_seqs.c.user_id == user_id)).first()
        return 0 if row is None else int(row[0])


def numbered_payload(event: OutgoingEvent) -> tuple[str, str]:
    """The push event's text cut where its seq goes: ``head + str(seq) + tail`` is the payload the event
    has with that seq. Found by writing it with two seqs and cutting where they differ, so that nothing
    here depends on where the key sorts among the message's (a reminder's sorts later than a task's)."""
    message = event.cloud_event["data"]["message"]
    zero = event.payload()
    one = OutgoingEvent(event.topic, event.partition_key, {
        **event.cloud_event, "data": {**event.cloud_event["data"], "message": {**message, "seq": 1}}}).payload()
    at = next(i for i, (a, b) in enumerate(zip(zero, one, strict=True)) if a != b)
    return zero[:at], zero[at + 1:]


class SqlTickets:
    """Short-lived, one-use WebSocket tickets: only a hash is kept, and taking one deletes it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def issue(self, ticket_hash: str, user_id: str, roles: list[str], token_expires_at: datetime,
              expires_at: datetime) -> None:
        self.conn.execute(delete(ws_tickets).where(ws_tickets.c.expires_at < expires_at - TICKET_SWEEP))
        self.conn.execute(insert(ws_tickets).values(ticket_hash=ticket_hash, user_id=user_id, roles=roles,
                                                    token_expires_at=token_expires_at, expires_at=expires_at))

    def take(self, ticket_hash: str, now: datetime) -> tuple[str, list[str], datetime] | None:
        row = self.conn.execute(
            delete(ws_tickets).where(ws_tickets.c.ticket_hash == ticket_hash)
            .returning(ws_tickets.c.user_id, ws_tickets.c.roles, ws_tickets.c.token_expires_at,
                       ws_tickets.c.expires_at)).first()
        if row is None or row.expires_at < now:
            return None
        return row.user_id, list(row.roles), row.token_expires_at


TICKET_SWEEP = timedelta(minutes=10)


TICKET_TTL = timedelta(seconds=30)


class PushStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def since(self, user_id: str, after: int, limit: int = 500) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return SqlChangeFeed(conn).since(user_id, after, limit)

    def last(self, user_id: str) -> int:
        with self.engine.connect() as conn:
            return SqlChangeFeed(conn).last(user_id)

    def last_many(self, user_ids: list[str]) -> dict[str, int]:
        if not user_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(select(user_seqs.c.user_id, user_seqs.c.last_seq)
                                .where(user_seqs.c.user_id.in_(user_ids)))
            return {r.user_id: int(r.last_seq) for r in rows}

    def issue_ticket(self, principal: Principal, now: datetime) -> str:
        ticket = secrets.token_urlsafe(32)
        expires = datetime.fromtimestamp(principal.expires_at, UTC)
        with self.engine.begin() as conn:
            SqlTickets(conn).issue(_hash(ticket), principal.user_id, sorted(principal.roles), expires, now + TICKET_TTL)
        return ticket

    def take_ticket(self, ticket: str, now: datetime) -> Principal | None:
        with self.engine.begin() as conn:
            found = SqlTickets(conn).take(_hash(ticket), now)
        if found is None:
            return None
        user_id, roles, token_expires_at = found
        return Principal(user_id, frozenset(roles), int(token_expires_at.timestamp()))


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()

