"""Dead letters in SQL, and the office that sends one where its deliverer's dead letters go."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ..service.dead_letters import DeadLetter
from ..service.events import dead_letter_cloud_event
from .db import upsert
from .tables import dead_letters

if TYPE_CHECKING:
    from .outbox import Publisher

log = logging.getLogger(__name__)


class SqlDeadLetters:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, letter: DeadLetter) -> bool:
        """Keep the letter (in the caller's transaction); False when this consumer dead-lettered this
        event before: a redelivered poison event is one dead letter."""
        stmt = upsert(self.conn, dead_letters).values(
            consumer=letter.consumer[:100], topic=letter.topic[:255] if letter.topic else None,
            event_source=letter.event_source, event_id=letter.event_id[:255] if letter.event_id else None,
            event=letter.event_json(), reason=letter.reason, attempts=letter.attempts, created_at=letter.at,
        ).on_conflict_do_nothing().returning(dead_letters.c.id)
        return self.conn.execute(stmt).first() is not None

    def latest(self, limit: int = 50, consumer: str | None = None) -> list[dict[str, Any]]:
        """The newest letters first, each as ``todo dead-letters`` prints it."""
        stmt = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
        if consumer is not None:
            stmt = stmt.where(dead_letters.c.consumer == consumer)
        return [{"id": row.id, "at": row.created_at.isoformat().replace("+00:00", "Z"), "consumer": row.consumer,
                 "topic": row.topic, "attempts": row.attempts, "reason": row.reason,
                 "event_source": row.event_source, "event_id": row.event_id, "event": _loads(row.event)}
                for row in self.conn.execute(stmt)]


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


class DeadLetterOffice:
    """A runtime's dead-letter sink: the ``dead_letters`` table always; with a publisher (the real stack,
    the cluster) also the dead-letter topic, through daprd, as a record that carries the reason."""

    def __init__(self, engine: Engine, publisher: Publisher | None = None) -> None:
        self.engine = engine
        self.publisher = publisher

    def send(self, letter: DeadLetter, *, publish: bool) -> bool:
        try:
            with self.engine.begin() as conn:
                new = SqlDeadLetters(conn).add(letter)
        except Exception:  # the table is out of reach: the topic (or the deliverer's DROP) must do
            log.exception("could not keep a dead letter", extra={"consumer": letter.consumer,
                                                                 "ce_id": letter.event_id})
            new, kept = True, False
        else:
            kept = True
        if not publish or self.publisher is None:
            return kept
        if not new:
            return True  # dead-lettered before (a redelivery): its record is on the topic already
        if letter.topic is None:
            return False  # no topic to name: the deliverer's own dead-lettering keeps the event
        record = dead_letter_cloud_event(letter, letter.topic)
        try:
            self.publisher.publish_many(record.topic, [(record.partition_key, record.cloud_event)])
        except Exception:
            log.exception("could not publish a dead letter", extra={"consumer": letter.consumer,
                                                                    "ce_id": letter.event_id})
            return False
        log.warning("dead letter published", extra={"consumer": letter.consumer, "ce_id": letter.event_id,
                                                     "topic": record.topic, "reason": letter.reason})
        return True
