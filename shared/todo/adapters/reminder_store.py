"""Reminders, notification settings and notification attempts in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..domain.reminders import SNOOZE, DueReminder, NotificationSettings, PlannedReminder, Webhook
from .db import upsert
from .tables import notification_attempts, notification_settings, reminders


class SqlReminderStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def replan(self, user_id: str, task_id: int, planned: list[PlannedReminder],
               now: datetime) -> list[PlannedReminder]:
        """Make the task's scheduled reminders ``planned`` (snoozes kept); returns the ones added."""
        rows = self.conn.execute(
            select(reminders.c.id, reminders.c.spec, reminders.c.remind_at)
            .where(reminders.c.task_id == task_id, reminders.c.status == "scheduled")
        ).all()
        current = {(r.spec, r.remind_at): r.id for r in rows if r.spec != SNOOZE}
        wanted = {(p.spec, p.remind_at) for p in planned}
        stale = [row_id for key, row_id in current.items() if key not in wanted]
        if stale:
            self.conn.execute(update(reminders).where(reminders.c.id.in_(stale)).values(status="cancelled"))
        added = [p for p in planned if (p.spec, p.remind_at) not in current]
        if added:
            self.conn.execute(insert(reminders), [
                {"user_id": user_id, "task_id": task_id, "spec": p.spec, "remind_at": p.remind_at,
                 "status": "scheduled", "created_at": now} for p in added])
        return added

    def cancel(self, task_id: int) -> None:
        self.conn.execute(update(reminders).where(reminders.c.task_id == task_id, reminders.c.status == "scheduled")
                          .values(status="cancelled"))

    def snooze(self, user_id: str, task_id: int, at: datetime, now: datetime) -> None:
        self.conn.execute(insert(reminders).values(user_id=user_id, task_id=task_id, spec=SNOOZE, remind_at=at,
                                                   status="scheduled", created_at=now))

    def claim_due(self, now: datetime, limit: int) -> list[DueReminder]:
        """Due reminders, moved to 'triggered' in this transaction. Concurrent scanners skip the rows
        another one holds (PostgreSQL SKIP LOCKED; SQLite has one writer at a time)."""
        stmt = (select(reminders.c.id, reminders.c.user_id, reminders.c.task_id, reminders.c.remind_at)
                .where(reminders.c.status == "scheduled", reminders.c.remind_at <= now)
                .order_by(reminders.c.remind_at, reminders.c.id).limit(limit))
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        due = [DueReminder(r.id, r.user_id, r.task_id, r.remind_at) for r in self.conn.execute(stmt)]
        if due:
            self.conn.execute(update(reminders).where(reminders.c.id.in_([d.id for d in due]))
                              .values(status="triggered", triggered_at=now))
        return due

    # -- notification settings ----------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """When the earliest scheduled reminder is due (ix_reminders_due answers it)."""
        return self.conn.execute(
            select(reminders.c.remind_at).where(reminders.c.status == "scheduled")
            .order_by(reminders.c.remind_at).limit(1)
        ).scalar()

    def settings(self, user_id: str) -> NotificationSettings:
        row = self.conn.execute(select(notification_settings.c.settings)
                                .where(notification_settings.c.user_id == user_id)).first()
        if row is None:
            return NotificationSettings()
        data: dict[str, Any] = row[0]
        return NotificationSettings(in_app=data["in_app"], email=data["email"],
                                    webhooks=tuple(Webhook(w["url"], w["secret"]) for w in data["webhooks"]))

    def save_settings(self, user_id: str, settings: NotificationSettings, now: datetime) -> None:
        data = {"in_app": settings.in_app, "email": settings.email,
                "webhooks": [{"url": w.url, "secret": w.secret} for w in settings.webhooks]}
        stmt = upsert(self.conn, notification_settings).values(user_id=user_id, settings=data, updated_at=now)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["user_id"],
                                                     set_={"settings": data, "updated_at": now}))

    # -- attempts -----------------------------------------------------------------------------------

    def delivered(self, reminder_id: int, channel: str) -> bool:
        row = self.conn.execute(select(notification_attempts.c.id).where(and_(
            notification_attempts.c.reminder_id == reminder_id, notification_attempts.c.channel == channel,
            notification_attempts.c.delivered.is_(True)))).first()
        return row is not None

    def record_attempt(self, reminder_id: int, channel: str, attempt: int, ok: bool, detail: str | None,
                       now: datetime) -> bool:
        """Record one attempt; False when a delivery on this channel was recorded already."""
        values = {"reminder_id": reminder_id, "channel": channel, "attempt": attempt, "ok": ok,
                  "detail": (detail or "")[:2000] or None, "at": now, "delivered": ok}
        try:
            with self.conn.begin_nested():
                self.conn.execute(insert(notification_attempts).values(values))
        except IntegrityError:
            return False
        return True

    def attempts(self, reminder_id: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(notification_attempts).where(notification_attempts.c.reminder_id == reminder_id)
                                 .order_by(notification_attempts.c.id)).mappings()
        return [dict(r) for r in rows]
