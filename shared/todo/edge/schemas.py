"""Request and response models: they validate input at the edge and generate the OpenAPI document."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from .. import limits as lim
from ..domain.audit import Occurrence
from ..domain.durations import parse_duration
from ..domain.recurrence import MAX_RULE_LENGTH, Recurrence, normalize_rrule
from ..domain.reminders import NotificationSettings, Webhook
from ..domain.task import MAX_REMINDERS, MAX_TAGS, Priority, Reminder, Status, TaskFields, normalize_tags
from ..service.audit import MAX_LIMIT as MAX_AUDIT_LIMIT
from ..service.audit import AuditQuery
from ..service.events import kind_of
from ..service.queries import DEFAULT_SORT, TaskQuery, parse_sort
from ..service.reminders import Triggered
from ..service.series import InstanceClosed

PriorityLabel = Literal["high", "medium", "low"]


def _refuse(problem: str | None) -> None:
    if problem is not None:
        raise ValueError(problem)


def _zone(name: str) -> str:
    _refuse(lim.zone_problem(name))
    return name


def _line(text: str) -> str:
    _refuse(lim.text_problem(text, multiline=False))
    return text


def _multiline(text: str) -> str:
    _refuse(lim.text_problem(text, multiline=True))
    return text


def _date_time_text(value: Any) -> Any:
    if isinstance(value, datetime):  # built in code, not parsed from a request
        return value
    _refuse(lim.date_time_text_problem(value))
    return value


def _in_range(value: datetime) -> datetime:
    _refuse(lim.instant_problem(value))
    return value


def _ecma(pattern: str) -> str:
    """A Python pattern as JSON Schema's (ECMA 262) dialect writes it: without group names."""
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


# Every date-time a request carries: RFC 3339 text with an offset, inside the accepted range (todo.limits).
Instant = Annotated[AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(_in_range), Field(
    description=f"RFC 3339 with an offset, from {lim.EARLIEST_INSTANT:%Y-%m-%d} to before "
                f"{lim.LATEST_INSTANT:%Y-%m-%d}")]
Line = Annotated[str, AfterValidator(_line), Field(json_schema_extra={"pattern": lim.LINE_PATTERN})]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=lim.MAX_TAG),
                AfterValidator(_line), Field(json_schema_extra={"pattern": lim.LINE_PATTERN})]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=lim.MAX_TITLE),
                  AfterValidator(_line), Field(json_schema_extra={"pattern": lim.LINE_PATTERN})]
Description = Annotated[str, Field(max_length=lim.MAX_DESCRIPTION, json_schema_extra={"pattern": lim.TEXT_PATTERN}),
                        AfterValidator(_multiline)]
Duration = Annotated[str, Field(max_length=lim.MAX_DURATION_LENGTH,
                                json_schema_extra={"pattern": _ecma(lim.DURATION_PATTERN)})]
Id = Annotated[int, Field(ge=1, le=lim.MAX_ID)]


def _tags(tags: list[str]) -> list[str]:
    unique = normalize_tags(tags)
    if len(unique) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} distinct tags")
    return list(unique)


def _duration(text: str) -> str:
    parse_duration(text)
    return text


TimeZoneName = Annotated[str, Field(max_length=lim.MAX_ZONE_NAME, examples=["Europe/Paris"]), AfterValidator(_zone)]


class Model(BaseModel):
    """The base of every model here: each is built on first use, not when this module is imported.

    A function validates only a few of them; building all of them at import cost every cold start
    ~12 ms. The OpenAPI document builds the rest when it is asked for.
    """

    model_config = ConfigDict(defer_build=True)


class Strict(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RecurrenceIn(Strict):
    rrule: Annotated[str, Field(max_length=MAX_RULE_LENGTH, examples=["FREQ=WEEKLY;BYDAY=MO,WE"],
                                description="An RFC 5545 RRULE value, HOURLY or coarser; see docs/recurrence.md")]
    anchor: Literal["schedule", "completion"] = "schedule"

    @field_validator("rrule")
    @classmethod
    def _rule(cls, value: str) -> str:
        return normalize_rrule(value)


class ReminderIn(Strict):
    before: Annotated[Duration | None, Field(examples=["PT15M"], description="ISO 8601 duration before due_at")] = None
    at: Instant | None = None

    @field_validator("before")
    @classmethod
    def _before(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)

    @model_validator(mode="after")
    def _one_of(self) -> ReminderIn:
        if (self.before is None) == (self.at is None):
            raise ValueError("give exactly one of 'before' or 'at'")
        return self

    def to_domain(self) -> Reminder:
        if self.before is not None:
            return Reminder(before=parse_duration(self.before))
        assert self.at is not None
        return Reminder(at=self.at.astimezone(UTC))


class TaskWrite(Strict):
    """A complete task as written: the body of POST, and the result of a merge patch."""

    title: Title
    description: Description = ""
    priority: PriorityLabel = "medium"
    tags: Annotated[list[Tag], Field(max_length=lim.MAX_TAGS_GIVEN), AfterValidator(_tags)] = []
    due_at: Instant | None = None
    timezone: TimeZoneName = "UTC"
    recurrence: RecurrenceIn | None = None
    reminders: Annotated[list[ReminderIn], Field(max_length=MAX_REMINDERS)] = []

    def to_domain(self) -> TaskFields:
        return TaskFields(
            title=self.title,
            description=self.description,
            priority=Priority.parse(self.priority),
            tags=tuple(self.tags),
            due_at=self.due_at.astimezone(UTC) if self.due_at else None,
            timezone=self.timezone,
            recurrence=Recurrence(self.recurrence.rrule, self.recurrence.anchor) if self.recurrence else None,
            reminders=tuple(r.to_domain() for r in self.reminders),
        )


class TaskPatch(Strict):
    """JSON merge patch (RFC 7396) of a task: present keys replace, ``null`` clears."""

    title: Title | None = None
    description: Description | None = None
    priority: PriorityLabel | None = None
    tags: Annotated[list[Tag], Field(max_length=lim.MAX_TAGS_GIVEN)] | None = None
    due_at: Instant | None = None
    timezone: TimeZoneName | None = None
    recurrence: dict[str, Any] | None = None
    reminders: list[dict[str, Any]] | None = None
    status: Literal["open", "completed"] | None = None


class RecurrenceOut(Model):
    rrule: str
    anchor: Literal["schedule", "completion"]


class TaskOut(Model):
    id: int
    title: str
    description: str
    status: Literal["open", "completed"]
    priority: PriorityLabel
    tags: list[str]
    due_at: datetime | None
    timezone: str
    recurrence: RecurrenceOut | None
    reminders: list[dict[str, str]]
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    series: SeriesOut | None = Field(description="Set on every instance of a recurring task")
    skipped: bool = Field(description="Closed by POST /tasks/{id}/skip rather than done")


class SeriesOut(Model):
    id: int
    occurrence: int = Field(description="1 for the task that started the series")


class ScopeIn(Strict):
    """``scope`` of PATCH and DELETE on an instance of a recurring task."""

    scope: Literal["instance", "series"] = Field(
        "instance", description="instance: this one only; series: this one and those to come")


class TaskPage(Model):
    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class TagCount(Model):
    name: str
    count: int


class Health(Model):
    status: Literal["ok"]
    function: str


class FieldProblem(Model):
    field: str
    message: str


class Problem(Model):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] | None = None


def _comma(value: str | None) -> list[str]:
    return [] if value is None else [v.strip() for v in value.split(",") if v.strip()]


class ListQueryIn(Strict):
    """Query parameters of ``GET /tasks``."""

    q: Annotated[Line | None, Field(min_length=1, max_length=lim.MAX_QUERY_TEXT,
                                    description="Full-text search, ranked")] = None
    status: Literal["open", "completed", "all"] = "open"
    priority: Annotated[str | None, Field(max_length=100, description="Comma list of high, medium, low")] = None
    tags: Annotated[Line | None, Field(max_length=lim.MAX_TAGS * (lim.MAX_TAG + 1),
                                       description="Comma list of tags")] = None
    tag_mode: Literal["all", "any"] = "all"
    due_before: Instant | None = None
    due_after: Instant | None = None
    overdue: bool = False
    sort: Annotated[str | None, Field(max_length=200, description=(
        "Comma list of due_at, priority, created_at, updated_at, title; '-' for descending. "
        "Default due_at,-priority; best match first with q"))] = None
    limit: Annotated[int, Field(ge=1, le=lim.MAX_PAGE)] = 50
    cursor: Annotated[str | None, Field(max_length=lim.MAX_CURSOR)] = None

    @field_validator("priority")
    @classmethod
    def _priorities(cls, value: str | None) -> str | None:
        for item in _comma(value):
            if item not in ("high", "medium", "low"):
                raise ValueError(f"unknown priority {item!r}")
        return value

    @field_validator("tags")
    @classmethod
    def _tag_list(cls, value: str | None) -> str | None:
        items = _comma(value)
        if len(items) > MAX_TAGS or any(len(t) > 50 for t in items):
            raise ValueError(f"at most {MAX_TAGS} tags of at most 50 characters")
        return value

    @field_validator("sort")
    @classmethod
    def _sort(cls, value: str | None) -> str | None:
        if value is not None:
            parse_sort(value)
        return value

    def to_query(self, user_id: str, now: datetime) -> TaskQuery:
        statuses = () if self.status == "all" else (Status(self.status),)
        # An empty sort means relevance: with q and no explicit sort, the best match comes first.
        default = () if self.q else parse_sort(DEFAULT_SORT)
        sort = parse_sort(self.sort) if self.sort is not None else default
        return TaskQuery(
            user_id=user_id, now=now, q=self.q, statuses=statuses,
            priorities=tuple(Priority.parse(p) for p in _comma(self.priority)),
            tags=normalize_tags(_comma(self.tags)), tag_mode=self.tag_mode,
            due_before=self.due_before, due_after=self.due_after, overdue=self.overdue,
            sort=sort, limit=self.limit, cursor=self.cursor,
        )


# -- the audit trail ------------------------------------------------------------------------------

UserId = Annotated[str, StringConstraints(min_length=1, max_length=lim.MAX_USER_ID)]
TaskId = Annotated[int, Field(strict=True, ge=1, le=lim.MAX_ID)]


class FieldChange(Model):
    """One field of ``data.changes``: its value before and after the change (null when absent)."""

    from_: Any = Field(alias="from")
    to: Any


TaskVersion = Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)]


class TaskEventData(Model):
    """``data`` of ``dev.todo.task.<event_type>.v1`` (fields added later are ignored, not refused).

    ``changes`` came later (updated, completed): an event written before it has none, and audit-sink
    then diffs against the task's audited state of an earlier version."""

    event_type: Literal["created", "updated", "completed", "deleted"]
    task_id: TaskId
    task_data: dict[str, Any]
    user_id: UserId
    timestamp: AwareDatetime
    changes: dict[str, FieldChange] | None = None

    @property
    def version(self) -> int | None:
        """``task_data.version``: the order of the task's events (a deletion carries the last one)."""
        found = self.task_data.get("version")
        if found is None:
            return None
        return _TASK_VERSION.validate_python(found)


class ReminderEventData(Model):
    """``data`` of ``dev.todo.reminder.<scheduled|triggered>.v1``."""

    task_id: TaskId
    title: Annotated[str, Field(max_length=500)]
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime
    user_id: UserId
    task_version: TaskVersion | None = None  # came later: an event written before has none


_EVENT_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_TASK_VERSION: TypeAdapter[int] = TypeAdapter(TaskVersion)


def audited_occurrence(event_id: str, source: str, event_type: str, time: str | None, data: Any) -> Occurrence:
    """What an audited CloudEvent says happened; ``ValueError`` (never retried) when it is not one."""
    task_kind, reminder_kind = kind_of(event_type, "task"), kind_of(event_type, "reminder")
    if task_kind is None and reminder_kind is None:
        raise ValueError(f"the audit trail does not take {event_type!r} events")
    occurred_at = None if time is None else _EVENT_TIME.validate_python(time)
    _storable(event_id, source, data)
    if task_kind is not None:
        task = TaskEventData.model_validate(data)
        if task.event_type != task_kind:
            raise ValueError(f"data.event_type {task.event_type!r} contradicts the type {event_type!r}")
        if task.task_data.get("id", task.task_id) != task.task_id:
            raise ValueError("data.task_data.id is not data.task_id")
        changes = None if task.changes is None else {
            name: {"from": change.from_, "to": change.to} for name, change in task.changes.items()}
        return Occurrence(event_id, source, f"task.{task.event_type}", task.user_id, task.task_id,
                          occurred_at or task.timestamp, state=task.task_data, version=task.version,
                          changes=changes)
    reminder = ReminderEventData.model_validate(data)
    details = reminder.model_dump(mode="json", include={"title", "due_at", "remind_at"})
    return Occurrence(event_id, source, f"reminder.{reminder_kind}", reminder.user_id, reminder.task_id,
                      occurred_at, details=details, version=reminder.task_version)


def _storable(event_id: str, source: str, data: Any) -> None:
    """Refuse what the trail could never keep (it would fail, and be redelivered, forever): a value that
    is no JSON (NaN), a lone surrogate anywhere (no task of ours holds one: todo.domain.text), a NUL in
    what identifies the event or its actor (text columns). A NUL inside the task is kept as it is: a task
    written before writers refused it must not lose its history."""
    text = json.dumps([event_id, source, data], allow_nan=False, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("the event holds a lone surrogate: it is no Unicode text") from exc
    user_id = data.get("user_id") if isinstance(data, dict) else None
    for value in (event_id, source, user_id):
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("the event holds a NUL character in its id, source or user id")


class AuditEntryOut(Model):
    seq: int
    event_id: str
    source: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str = Field(description="The user id the event names")
    action: str = Field(examples=["task.updated"], description="The event type's short name")
    task_id: int
    changes: Any = Field(description="created: the full task; updated and completed: "
                                     '{"field": {"from": old, "to": new}}, as the writer saw them; deleted: null; '
                                     "reminders: their details")
    state: dict[str, Any] | None = Field(description="The task after the event (deleted: its last state)")
    task_version: int | None = Field(description="The task version the event is about: a task's history is in "
                                                 "this order (null: recorded before versions were kept)")
    chain: int = Field(description="The hash chain the entry is on: its user's (docs/audit.md)")
    position: int = Field(description="Its place on that chain: 1, 2, 3 … without gaps")
    prev_hash: str = Field(description="The hash of the entry before it on its chain (64 zeros for the first)")
    hash: str = Field(description="SHA-256 of prev_hash + the entry without hash as sorted, compact JSON "
                                  "(task_version left out when null; chain and position for entries recorded "
                                  "since chains, left out before)")


class AuditPage(Model):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ChainVerificationOut(Model):
    chain: int
    length: int = Field(description="The chain's head as stored: its last position")
    hash: str = Field(description="The chain's head as stored: its last entry's hash")
    ok: bool
    checked: int
    first_bad_seq: int | None


class AuditVerification(Model):
    ok: bool = Field(description="Every chain is what was appended to it")
    checked: int = Field(description="Entries examined")
    first_bad_seq: int | None = Field(description="Where the trail first differs from what was appended "
                                                  "(the lowest of the chains')")
    checkpoint: str = Field(description='SHA-256 over every head, [[chain, length, hash], …] as sorted, compact '
                                        "JSON: publish it, and a later trail that extends it rewrote nothing")
    chains: list[ChainVerificationOut]


class HistoryQueryIn(Strict):
    """Query parameters of ``GET /tasks/{id}/history``."""

    limit: Annotated[int, Field(ge=1, le=MAX_AUDIT_LIMIT)] = MAX_AUDIT_LIMIT
    cursor: Annotated[str | None, Field(max_length=lim.MAX_AUDIT_CURSOR)] = None


class AuditQueryIn(Strict):
    """Query parameters of ``GET /audit``: entries in append (``seq``) order."""

    user_id: Annotated[Line | None, Field(min_length=1, max_length=lim.MAX_USER_ID, description="The actor")] = None
    task_id: Id | None = None
    action: Annotated[Line | None, Field(min_length=1, max_length=lim.MAX_ACTION, examples=["task.deleted"])] = None
    since: Annotated[Instant | None, Field(description="occurred_at at or after (RFC 3339)")] = None
    until: Annotated[Instant | None, Field(description="occurred_at before (RFC 3339)")] = None
    chain: Annotated[int | None, Field(ge=0, le=32767, description="One chain's entries: in seq order, which on "
                                                                    "one chain is commit order (docs/audit.md)")] = None
    limit: Annotated[int, Field(ge=1, le=MAX_AUDIT_LIMIT)] = 50
    cursor: Annotated[str | None, Field(max_length=lim.MAX_AUDIT_CURSOR)] = None

    def to_query(self) -> AuditQuery:
        return AuditQuery(actor=self.user_id, task_id=self.task_id, action=self.action, since=self.since,
                          until=self.until, chain=self.chain, limit=self.limit, cursor=self.cursor)


# -- recurring tasks ------------------------------------------------------------------------------



class _SeriesData(Model):
    id: TaskId
    occurrence: Annotated[int, Field(strict=True, ge=1)]


class _InstanceData(Model):
    """The part of ``task_data`` that on-task-event reads (the rest is ignored)."""

    series: _SeriesData | None = None
    due_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None


def closed_instance(event_id: str, source: str, event_type: str, data: Any) -> InstanceClosed | None:
    """The series step a task event asks for; None when the task is not recurring.
    ``ValueError`` (never retried) when the event is not a task event of ours."""
    task_kind = kind_of(event_type, "task")
    if task_kind is None:
        raise ValueError(f"on-task-event does not take {event_type!r} events")
    event = TaskEventData.model_validate(data)
    if event.event_type != task_kind:
        raise ValueError(f"data.event_type {event.event_type!r} contradicts the type {event_type!r}")
    instance = _InstanceData.model_validate(event.task_data)
    if instance.series is None:
        return None
    return InstanceClosed(event_id, source, event.event_type, event.user_id, instance.series.id,
                          instance.series.occurrence, instance.due_at, instance.completed_at)


# -- reminders and notifications -----------------------------------------------------------------

_EMAIL = re.compile(lim.EMAIL_PATTERN)
_WEBHOOK_SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$")


class WebhookIn(Strict):
    url: Annotated[str, Field(max_length=500, pattern=r"^https?://", examples=["https://example.com/hooks/todo"])]
    secret: Annotated[str | None, Field(description="whsec_<base64>; generated when absent")] = None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not _WEBHOOK_SECRET.match(value):
            raise ValueError("must be whsec_ followed by at least 24 bytes in base64")
        return value


class NotificationSettingsIn(Strict):
    in_app: StrictBool = True  # JSON's true or false: 0 and "yes" are no booleans
    email: Annotated[str | None, Field(max_length=lim.MAX_EMAIL,
                                       json_schema_extra={"pattern": lim.EMAIL_PATTERN})] = None
    webhooks: Annotated[list[WebhookIn], Field(max_length=5)] = []

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        # fullmatch: a pattern's $ also matches before a final newline, which must not pass (found 7).
        if value is not None and not _EMAIL.fullmatch(value):
            raise ValueError("not an email address")
        return value

    def to_domain(self, new_secret: Callable[[], str]) -> NotificationSettings:
        return NotificationSettings(self.in_app, self.email,
                                    tuple(Webhook(w.url, w.secret or new_secret()) for w in self.webhooks))


class WebhookOut(Model):
    url: str
    secret: str = Field(description="Verify the webhook-signature header with it (Standard Webhooks)")


class NotificationSettingsOut(Model):
    in_app: bool
    email: str | None
    webhooks: list[WebhookOut]


def settings_json(settings: NotificationSettings) -> dict[str, Any]:
    return {"in_app": settings.in_app, "email": settings.email,
            "webhooks": [{"url": w.url, "secret": w.secret} for w in settings.webhooks]}


class SnoozeIn(Strict):
    """Remind again ``for`` a while from now, or ``until`` an instant."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    for_: Annotated[Duration | None, Field(alias="for", examples=["PT10M"])] = None
    until: Instant | None = None

    @field_validator("for_")
    @classmethod
    def _for(cls, value: str | None) -> str | None:
        return None if value is None else _duration(value)

    @model_validator(mode="after")
    def _one_of(self) -> SnoozeIn:
        if (self.for_ is None) == (self.until is None):
            raise ValueError("give exactly one of 'for' or 'until'")
        return self

    def until_from(self, now: datetime) -> datetime:
        until = now + parse_duration(self.for_) if self.for_ is not None else self.until
        assert until is not None
        if until <= now:
            raise ValueError("'until' must be in the future")
        return until.astimezone(UTC)


class SnoozeOut(Model):
    task_id: int
    remind_at: datetime


class TriggeredData(Model):
    """``data`` of ``dev.todo.reminder.triggered.v1`` as on-reminder needs it."""

    reminder_id: TaskId
    task_id: TaskId
    title: Annotated[str, Field(max_length=500)]
    due_at: AwareDatetime | None = None
    remind_at: AwareDatetime
    user_id: UserId


def triggered_reminder(event_type: str, data: Any) -> Triggered | None:
    """The reminder to send; None for ``scheduled`` events; ``ValueError`` for anything else."""
    kind = kind_of(event_type, "reminder")
    if kind == "scheduled":
        return None
    if kind != "triggered":
        raise ValueError(f"on-reminder does not take {event_type!r} events")
    t = TriggeredData.model_validate(data)
    return Triggered(t.reminder_id, t.user_id, t.task_id, t.title, t.due_at, t.remind_at)


# -- push-update ---------------------------------------------------------------------------------


class ChangesQueryIn(Strict):
    """Query parameters of ``GET /changes``."""

    since: Annotated[int, Field(ge=0, le=lim.MAX_SEQ, description="The last seq you saw (0: from the start)")] = 0
    limit: Annotated[int, Field(ge=1, le=lim.MAX_CHANGES_PAGE)] = 100


class PushMessage(Model):
    """One numbered message of a user's feed, as sent on the WebSocket."""

    model_config = ConfigDict(extra="allow")
    seq: Annotated[int, Field(strict=True, ge=1)]
    type: Annotated[str, Field(max_length=50)]


class _PushData(Model):
    user_id: UserId
    message: PushMessage


def push_message(event_type: str, data: Any) -> tuple[str, dict[str, Any]]:
    """The user and message a task-updates event carries; ``ValueError`` (never retried) otherwise."""
    if kind_of(event_type, "push") != "change":
        raise ValueError(f"push-update does not take {event_type!r} events")
    parsed = _PushData.model_validate(data)
    return parsed.user_id, parsed.message.model_dump()


class ChangesPage(Model):
    items: list[PushMessage]
    last_seq: int = Field(description="The newest seq of your feed")


class WsTicket(Model):
    ticket: str
    expires_in: int = Field(description="Seconds; a ticket opens one socket once")
