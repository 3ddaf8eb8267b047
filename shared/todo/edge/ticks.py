"""What each tick of the route table does (todo.routes.TICKS): one handler per tick name.

A function answers ``POST /<tick>`` for every tick that names it (``OPTIONS`` too: daprd probes each
cron binding's route when it starts); the handler runs on a worker thread and its result is the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..routes import TICKS
from ..runtime import Runtime
from ..service import reminders

TickHandler = Callable[[Runtime], Any]


def scan_reminders(runtime: Runtime) -> int:
    """Fire reminders as they fall due until the next tick comes (the tick's period: its window)."""
    until = runtime.now() + timedelta(seconds=runtime.settings.reminder_window_seconds)
    return reminders.fire_until(runtime.writing_uow, "on-reminder", runtime.now, until, time.sleep)


def sweep_outbox(runtime: Runtime) -> int:
    """Publish what a crash left in the outbox between a commit and its publish."""
    return runtime.relay.drain()


HANDLERS: dict[str, TickHandler] = {
    "reminder-scan": scan_reminders,
    "outbox-sweep": sweep_outbox,
}

assert set(HANDLERS) == {t.name for t in TICKS}, "every tick of todo.routes.TICKS has its handler here"
