"""Recurring tasks move on: when an instance is completed, skipped or deleted, the next one is made.

Exactly one next instance per instance, however often the event arrives and however many consumers
race: the event is claimed in the transaction that creates the instance, and the database refuses a
second (series, occurrence).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from ..domain.recurrence import NextInstance
from ..domain.task import Series, Task
from .tasks import Context, UnitOfWork, record_event

log = logging.getLogger(__name__)

CONSUMER = "on-task-event"
ADVANCING = ("completed", "deleted")  # a skip arrives as "completed" with skipped: true


class EvaluationOverBudget(Exception):
    """Computing the next instance used up its CPU-time budget. The candidate cap keeps every rule far
    below it, so this says that the cap under-counts some work (a defect to look into), not that the
    user's rule ended. The transaction is rolled back and the event is not claimed; the delivery
    contract decides (a few attempts, then the dead letter, where the reason is kept)."""

    def __init__(self, outcome: NextInstance) -> None:
        super().__init__(f"the next instance took longer than its budget ({outcome.examined} candidates examined)")
        self.outcome = outcome


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
    takes to evaluate (todo.domain.expansion bounds it), no other writer waits for it. Under the lock the
    series is read again; only if its rule changed meanwhile is the date computed anew.
    """
    if closed.event_type not in ADVANCING:
        return None
    with uow:
        seen = uow.tasks.get_series(closed.series_id)
    nxt = _next_instance(seen, closed, ctx.now) if seen is not None else None
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
        if nxt is None or seen is None or series.schedule != seen.schedule:
            nxt = _next_instance(series, closed, ctx.now)
        # An evaluation that finds nothing within its cap ends the series: a deterministic outcome, like
        # COUNT or UNTIL.
        if nxt.due is None:
            uow.tasks.save_series(replace(series, ended_at=ctx.now))
            uow.commit()
            log.info("series ended", extra={"series_id": series.id, "occurrence": closed.occurrence,
                                            "reason": nxt.ending, "examined": nxt.examined})
            return None
        task = uow.tasks.add_instance(series, closed.occurrence + 1, nxt.due, ctx.now)
        if task is not None:
            record_event(uow, ctx, "created", task)
        uow.commit()
    return task


def _next_instance(series: Series, closed: InstanceClosed, now: datetime) -> NextInstance:
    nxt = series.schedule.next_instance(closed.occurrence, closed.due_at, closed.completed_at, now)
    if nxt.ending == "over_budget":
        raise EvaluationOverBudget(nxt)
    return nxt
