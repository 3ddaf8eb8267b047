"""Recurring tasks move on: when an instance is completed, skipped or deleted, the next one is made.

Exactly one next instance per instance, however often the event arrives and however many consumers
race: the event is claimed in the transaction that creates the instance, and the database refuses a
second (series, occurrence).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from ..domain.task import Series, Task
from .tasks import Context, UnitOfWork, record_event

log = logging.getLogger(__name__)

CONSUMER = "on-task-event"
ADVANCING = ("completed", "deleted")  # a skip arrives as "completed" with skipped: true


@dataclass(frozen=True)
class InstanceClosed:
    """What on-task-event reads from a task event (the edge has validated the shape)."""

    event_id: str
    source: str
    event_type: str
    user_id: str
    series_id: int
    occurrence: int
    due_at: datetime | None
    completed_at: datetime | None


def advance(uow: UnitOfWork, ctx: Context, closed: InstanceClosed) -> Task | None:
    """Create the instance after ``closed`` (None: a duplicate, a stale instance, or the series is over).

    The next due date is computed before the transaction that creates the instance: that transaction
    holds the series' row lock, and on SQLite the database's only write lock, so however long a rule
    takes to evaluate (the recurrence bounds it), no other writer waits for it. Under the lock the
    series is read again; only if its rule changed meanwhile is the date computed anew.
    """
    if closed.event_type not in ADVANCING:
        return None
    with uow:
        seen = uow.tasks.get_series(closed.series_id)
    due = _next_due(seen, closed, ctx.now) if seen is not None else None
    with uow:
        if not uow.claim(CONSUMER, closed.source, closed.event_id, ctx.now):
            return None
        series = uow.tasks.get_series(closed.series_id, for_update=True)
        if series is None or series.ended_at is not None or series.user_id != closed.user_id:
            uow.commit()
            return None
        if uow.tasks.latest_occurrence(series.id) > closed.occurrence:  # an older instance closed late
            uow.commit()
            return None
        if seen is None or series.schedule != seen.schedule:
            due = _next_due(series, closed, ctx.now)
        if due is None:
            uow.tasks.save_series(replace(series, ended_at=ctx.now))
            uow.commit()
            log.info("series ended", extra={"series_id": series.id, "occurrence": closed.occurrence})
            return None
        task = uow.tasks.add_instance(series, closed.occurrence + 1, due, ctx.now)
        if task is not None:
            record_event(uow, ctx, "created", task)
        uow.commit()
    return task


def _next_due(series: Series, closed: InstanceClosed, now: datetime) -> datetime | None:
    return series.schedule.next_due(closed.occurrence, closed.due_at, closed.completed_at, now)
