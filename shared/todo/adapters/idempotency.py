"""Claim an event for a consumer inside the transaction that applies its effect."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from .. import metrics
from .db import upsert
from .tables import UTCDateTime, processed_events

_CLAIM = text(
    "INSERT INTO processed_events (consumer, source, event_id, processed_at) "
    "SELECT :consumer, k.pair->>0, k.pair->>1, :now FROM json_array_elements(CAST(:keys AS json)) "
    "WITH ORDINALITY AS k(pair, n) ORDER BY k.n "
    "ON CONFLICT DO NOTHING RETURNING source, event_id",
).bindparams(bindparam("now", type_=UTCDateTime()))


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
    if conn.dialect.name == "postgresql":
        # One JSON parameter: one statement text whatever the number (a multi-row VALUES has one per
        # count, each a fresh parameter scan in pg8000); the claims are taken in the array's order.
        found = conn.execute(_CLAIM, {"consumer": consumer, "now": now, "keys": json.dumps(keys, ensure_ascii=False)})
        claimed = {(source, event_id) for source, event_id in found}
    else:
        claimed = _claim_rows(conn, consumer, keys, now)
    if len(claimed) < len(keys):
        metrics.note_duplicates(set(keys) - claimed)
    return claimed


def _claim_rows(conn: Connection, consumer: str, keys: list[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
    stmt = (upsert(conn, processed_events).on_conflict_do_nothing()
            .returning(processed_events.c.source, processed_events.c.event_id))
    rows = [{"consumer": consumer, "source": source, "event_id": event_id, "processed_at": now}
            for source, event_id in keys]
    # Executed with many rows and RETURNING: SQLAlchemy sends them as one multi-row INSERT.
    return {(row.source, row.event_id) for row in conn.execute(stmt, rows)}
