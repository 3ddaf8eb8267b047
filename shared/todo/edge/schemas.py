"""Request and response models: they validate input at the edge and generate the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ..domain.durations import parse_duration
from ..domain.recurrence import Recurrence, normalize_rrule
from ..domain.task import MAX_REMINDERS, MAX_TAGS, Priority, Reminder, Status, TaskFields, normalize_tags
from ..service.queries import DEFAULT_SORT, TaskQuery, parse_sort

PriorityLabel = Literal["high", "medium", "low"]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Paris") from exc
    return name


def _tags(tags: list[str]) -> list[str]:
    unique = normalize_tags(tags)
    if len(unique) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} distinct tags")
    return list(unique)


def _duration(text: str) -> str:
    parse_duration(text)
    return text


TimeZoneName = Annotated[str, Field(max_length=64, examples=["Europe/Paris"]), AfterValidator(_zone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RecurrenceIn(Strict):
    rrule: Annotated[str, Field(max_length=500, examples=["FREQ=WEEKLY;BYDAY=MO,WE"])]
    anchor: Literal["schedule", "completion"] = "schedule"

    @field_validator("rrule")
    @classmethod
    def _rule(cls, value: str) -> str:
        return normalize_rrule(value)


class ReminderIn(Strict):
    before: Annotated[str | None, Field(examples=["PT15M"], description="ISO 8601 duration before due_at")] = None
    at: AwareDatetime | None = None

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

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    description: Annotated[str, Field(max_length=20_000)] = ""
    priority: PriorityLabel = "medium"
    tags: Annotated[list[Tag], Field(max_length=200), AfterValidator(_tags)] = []
    due_at: AwareDatetime | None = None
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

    title: str | None = None
    description: str | None = None
    priority: PriorityLabel | None = None
    tags: list[str] | None = None
    due_at: AwareDatetime | None = None
    timezone: str | None = None
    recurrence: dict[str, Any] | None = None
    reminders: list[dict[str, Any]] | None = None
    status: Literal["open", "completed"] | None = None


class RecurrenceOut(BaseModel):
    rrule: str
    anchor: Literal["schedule", "completion"]


class TaskOut(BaseModel):
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


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class TagCount(BaseModel):
    name: str
    count: int


class Health(BaseModel):
    status: Literal["ok"]
    function: str


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
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

    q: Annotated[str | None, Field(min_length=1, max_length=500, description="Full-text search, ranked")] = None
    status: Literal["open", "completed", "all"] = "open"
    priority: Annotated[str | None, Field(description="Comma list of high, medium, low")] = None
    tags: Annotated[str | None, Field(description="Comma list of tags")] = None
    tag_mode: Literal["all", "any"] = "all"
    due_before: AwareDatetime | None = None
    due_after: AwareDatetime | None = None
    overdue: bool = False
    sort: Annotated[str | None, Field(description=(
        "Comma list of due_at, priority, created_at, updated_at, title; '-' for descending. "
        "Default due_at,-priority; best match first with q"))] = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str | None, Field(max_length=2000)] = None

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
