"""Claim an event for a consumer inside the transaction that applies its effect."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.engine import Connection

from .. import metrics
from .db import upsert
from .tables import processed_events


def claim(conn: Connection, consumer: str, source: str, event_id: str, now: datetime) -> bool:
    """True the first time; False when this consumer has already applied (or is applying) the event.

    On PostgreSQL a concurrent claim of the same event waits on the primary key until the first
    transaction ends, then sees the conflict: two racing deliveries cannot both apply the effect.
    """
    return bool(claim_many(conn, consumer, [(source, event_id)], now))


def claim_many(conn: Connection, consumer: str, events: Iterable[tuple[str, str]],
               now: datetime) -> set[tuple[str, str]]:
    """The ``(source, event_id)`` pairs claimed now, in one statement; the others were applied before.

    Claimed in key order, so that two batches sharing events wait for each other instead of
    deadlocking.
    """
    keys = sorted(set(events))
    if not keys:
        return set()
    stmt = (upsert(conn, processed_events).on_conflict_do_nothing()
            .returning(processed_events.c.source, processed_events.c.event_id))
    rows = [{"consumer": consumer, "source": source, "event_id": event_id, "processed_at": now}
            for source, event_id in keys]
    # Executed with many rows and RETURNING: SQLAlchemy sends them as one multi-row INSERT.
    claimed = {(row.source, row.event_id) for row in conn.execute(stmt, rows)}
    if len(claimed) < len(keys):
        metrics.note_duplicates(set(keys) - claimed)
    return claimed
