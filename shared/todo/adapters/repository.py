"""Tasks in SQL: PostgreSQL (tsvector search) and SQLite (FTS5), through SQLAlchemy Core."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ..domain.durations import parse_duration
from ..domain.errors import VersionMismatch
from ..domain.recurrence import Recurrence, Schedule
from ..domain.task import Priority, Reminder, Series, SeriesRef, Status, Task, TaskFields
from ..domain.text import unstorable
from ..limits import MAX_ID, int64_problem
from ..service.queries import InvalidCursor, SortKey, TaskQuery, decode_cursor, encode_cursor
from .tables import task_series, task_tags, tasks

_WORD = re.compile(r"\w+", re.UNICODE)
_RELEVANCE = SortKey("relevance")
_FTS = table("tasks_fts", column("rowid"))


class SqlTaskRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    # -- writes -------------------------------------------------------------------------------------

    def add(self, user_id: str, fields: TaskFields, now: datetime, series: SeriesRef | None = None,
            task_id: int | None = None) -> Task:
        """Insert a task; a recurring one starts its series unless it is an instance of one already.
        ``task_id``: one the task sequence gave already (todo.adapters.drafts), else the next one."""
        if series is None and fields.recurrence is not None:
            series = SeriesRef(self.start_series(user_id, fields, now), 1)
        values = {**_fields_to_row(fields), **_series_columns(series), "user_id": user_id,
                  "status": Status.OPEN.value, "completed_at": None, "created_at": now, "updated_at": now,
                  "version": 1, **({"id": task_id} if task_id is not None else {})}
        stmt = insert(tasks).values(values).returning(tasks.c.id)
        if fields.tags and self.dialect == "postgresql":
            # The task and its tags in one statement (a data-modifying CTE): a round trip less per create.
            made = stmt.cte("made")
            tag_list = literal(list(fields.tags), ARRAY(task_tags.c.tag.type))
            tags = func.unnest(tag_list).table_valued("tag").render_derived()
            tagged = insert(task_tags).from_select(
                ["task_id", "tag", "user_id"],
                select(made.c.id, tags.c.tag, literal(user_id, task_tags.c.user_id.type))
                .select_from(made.join(tags, true())))
            task_id = self.conn.execute(select(made.c.id).add_cte(tagged.cte("tagged"))).scalar_one()
        else:  # SQLite has no data-modifying CTE
            task_id = self.conn.execute(stmt).scalar_one()
            self._write_tags(task_id, user_id, fields.tags)
        return Task(task_id, user_id, fields, Status.OPEN, None, now, now, 1, series)

    def save(self, task: Task) -> None:
        """Write a revised task; the version guard refuses a lost update."""
        values = {**_fields_to_row(task.fields), **_series_columns(task.series), "status": task.status.value,
                  "skipped": task.skipped, "completed_at": task.completed_at, "updated_at": task.updated_at,
                  "version": task.version}
        result = self.conn.execute(
            update(tasks)
            .where(tasks.c.id == task.id, tasks.c.user_id == task.user_id, tasks.c.version == task.version - 1)
            .values(values)
        )
        if result.rowcount != 1:
            raise VersionMismatch(current=-1)
        self.conn.execute(delete(task_tags).where(task_tags.c.task_id == task.id))
        self._write_tags(task.id, task.user_id, task.fields.tags)

    # -- series -------------------------------------------------------------------------------------

    def start_series(self, user_id: str, fields: TaskFields, now: datetime) -> int:
        assert fields.recurrence is not None and fields.due_at is not None
        values = {"user_id": user_id, **_schedule_columns(fields), "template": _template(fields), "created_at": now}
        return int(self.conn.execute(insert(task_series).values(values).returning(task_series.c.id)).scalar_one())

    def get_series(self, series_id: int, *, for_update: bool = False) -> Series | None:
        stmt = select(task_series).where(task_series.c.id == series_id)
        if for_update and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).mappings().first()
        if row is None:
            return None
        schedule = Schedule(row["rrule"], row["anchor"], row["timezone"], row["dtstart"])
        return Series(row["id"], row["user_id"], schedule, _fields(row["template"]), row["ended_at"])

    def save_series(self, series: Series) -> None:
        template = series.template
        values = {"rrule": series.schedule.rrule, "anchor": series.schedule.anchor,
                  "timezone": series.schedule.timezone, "dtstart": series.schedule.dtstart,
                  "template": _template(template), "ended_at": series.ended_at}
        self.conn.execute(update(task_series).where(task_series.c.id == series.id).values(values))

    def add_instance(self, series: Series, occurrence: int, due_at: datetime, now: datetime) -> Task | None:
        """The instance ``occurrence`` of ``series``, or None when it exists already."""
        try:
            with self.conn.begin_nested():
                task = self.add(series.user_id, series.instance_fields(due_at), now,
                                SeriesRef(series.id, occurrence))
        except IntegrityError:  # the unique (series_id, occurrence): another delivery made it first
            return None
        self.conn.execute(update(task_series).where(task_series.c.id == series.id,
                                                    task_series.c.last_occurrence < occurrence)
                          .values(last_occurrence=occurrence))
        return task

    def latest_occurrence(self, series_id: int) -> int:
        """The highest occurrence the series has made, whether or not that instance still exists."""
        made = select(func.max(tasks.c.occurrence)).where(tasks.c.series_id == series_id).scalar_subquery()
        remembered = select(task_series.c.last_occurrence).where(task_series.c.id == series_id).scalar_subquery()
        row = self.conn.execute(select(func.coalesce(made, 0), func.coalesce(remembered, 0))).one()
        return int(max(row))

    def remove(self, task: Task) -> None:
        self.conn.execute(delete(tasks).where(tasks.c.id == task.id, tasks.c.user_id == task.user_id))

    def _write_tags(self, task_id: int, user_id: str, tags: Sequence[str]) -> None:
        if tags:  # one cached statement, sent as one multi-row VALUES (todo.adapters.db: insertmanyvalues)
            self.conn.execute(insert(task_tags), [{"task_id": task_id, "tag": t, "user_id": user_id} for t in tags])

    # -- reads --------------------------------------------------------------------------------------

    def get(self, user_id: str, task_id: int, *, for_update: bool = False) -> Task | None:
        stmt = select(tasks).where(tasks.c.id == task_id, tasks.c.user_id == user_id)
        if for_update and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).mappings().first()
        return _row_to_task(row) if row else None

    def tags(self, user_id: str) -> list[tuple[str, int]]:
        count = func.count().label("count")
        stmt = (
            select(task_tags.c.tag, count)
            .where(task_tags.c.user_id == user_id)
            .group_by(task_tags.c.tag)
            .order_by(count.desc(), task_tags.c.tag)
        )
        return [(row[0], row[1]) for row in self.conn.execute(stmt)]

    def find(self, query: TaskQuery) -> tuple[list[Task], str | None]:
        sort = query.sort or (_RELEVANCE,)
        stmt, rank = self._base(query)
        keys: list[tuple[ColumnElement[Any], bool, bool]] = [
            (rank if k.field == "relevance" and rank is not None else tasks.c[k.field], k.descending,
             k.field == "due_at")
            for k in sort
            if k.field != "relevance" or rank is not None
        ]
        keys.append((tasks.c.id, sort[-1].descending, False))
        if query.cursor is not None:
            stmt = stmt.where(_after(keys, _decode_cursor(query.cursor, query, sort, rank is not None)))
        stmt = stmt.order_by(*[_order(col, desc, nullable) for col, desc, nullable in keys]).limit(query.limit + 1)
        rows = self.conn.execute(stmt).mappings().all()
        items = [_row_to_task(r) for r in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            values = [_cursor_value(last, k) for k in sort if k.field != "relevance" or rank is not None]
            next_cursor = _encode_cursor(query, [*values, last["id"]])
        return items, next_cursor

    def _base(self, query: TaskQuery) -> tuple[Any, ColumnElement[Any] | None]:
        conditions: list[ColumnElement[bool]] = [tasks.c.user_id == query.user_id]
        if query.statuses:
            conditions.append(tasks.c.status.in_([s.value for s in query.statuses]))
        if query.priorities:
            conditions.append(tasks.c.priority.in_([int(p) for p in query.priorities]))
        if query.tags:
            tagged = select(task_tags.c.task_id).where(
                task_tags.c.user_id == query.user_id, task_tags.c.tag.in_(query.tags)
            )
            if query.tag_mode == "all":
                tagged = tagged.group_by(task_tags.c.task_id).having(func.count() == len(query.tags))
            conditions.append(tasks.c.id.in_(tagged))
        if query.due_before is not None:
            conditions.append(tasks.c.due_at < query.due_before)
        if query.due_after is not None:
            conditions.append(tasks.c.due_at >= query.due_after)
        if query.overdue:
            conditions.append(and_(tasks.c.due_at < query.now, tasks.c.status == Status.OPEN.value))

        if query.q is None:
            return select(tasks).where(*conditions), None
        if self.dialect == "postgresql":
            tsquery = func.websearch_to_tsquery(literal_column("'english'::regconfig"), query.q)
            search: ColumnElement[Any] = literal_column("tasks.search")
            conditions.append(search.op("@@")(tsquery))
            # Best first, ascending like bm25. float8, so that a rank read back from a cursor compares
            # equal to the one recomputed. ts_rank_cd reads only the row, so pages stay stable.
            rank: ColumnElement[Any] = -cast(func.ts_rank_cd(search, tsquery), Float(precision=53))
            return select(tasks, rank.label("rank")).where(*conditions), rank
        words = _WORD.findall(query.q.lower())
        if not words:
            return select(tasks).where(false()), None
        # Each word quoted: FTS5 syntax in the person's text is searched for, never interpreted.
        match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        # FTS5 takes the table's own name as the operand of MATCH and bm25.
        fts: ColumnElement[Any] = literal_column("tasks_fts")
        rank = func.bm25(fts, 10.0, 5.0, 1.0)
        stmt = (
            select(tasks, rank.label("rank"))
            .join_from(tasks, _FTS, _FTS.c.rowid == tasks.c.id)
            .where(fts.op("MATCH")(match), *conditions)
        )
        return stmt, rank


def _order(col: ColumnElement[Any], desc: bool, nullable: bool) -> Any:
    ordered = col.desc() if desc else col.asc()
    return ordered.nulls_last() if nullable else ordered


def _after(keys: list[tuple[ColumnElement[Any], bool, bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys`` (nullable keys sort nulls last)."""
    alternatives: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for (col, desc, nullable), value in zip(keys, values, strict=True):
        if value is None:
            beyond: ColumnElement[bool] = false()
            same: ColumnElement[bool] = col.is_(None)
        else:
            beyond = col < value if desc else col > value
            if nullable:
                beyond = or_(beyond, col.is_(None))
            same = col == value
        alternatives.append(and_(*equal_so_far, beyond))
        equal_so_far.append(same)
    return or_(*alternatives)


_TIMESTAMPS = {"due_at", "created_at", "updated_at"}


def _cursor_value(row: RowMapping, key: SortKey) -> Any:
    value = row["rank"] if key.field == "relevance" else row[key.field]
    return value.isoformat() if isinstance(value, datetime) else value


def _fingerprint(query: TaskQuery) -> str:
    return hashlib.sha256(query.filter_fingerprint().encode()).hexdigest()[:16]


def _encode_cursor(query: TaskQuery, values: list[Any]) -> str:
    return encode_cursor({"f": _fingerprint(query), "k": values})


def _decode_cursor(cursor: str, query: TaskQuery, sort: Sequence[SortKey], ranked: bool) -> list[Any]:
    data = decode_cursor(cursor)
    fields = [k.field for k in sort if k.field != "relevance" or ranked] + ["id"]
    if not isinstance(data.get("k"), list) or len(data["k"]) != len(fields):
        raise InvalidCursor("the cursor is malformed")
    if data.get("f") != _fingerprint(query):
        raise InvalidCursor("the cursor belongs to a different query; repeat the same filters and sort")
    return [_parse_cursor_value(f, v) for f, v in zip(fields, data["k"], strict=True)]


def _parse_cursor_value(field: str, value: Any) -> Any:
    if field == "due_at" and value is None:
        return None
    if field in _TIMESTAMPS and isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None and _convertible(parsed):
            return parsed
    elif field == "title" and isinstance(value, str):
        if unstorable(value) is None:
            return value
    elif field in ("priority", "id"):
        if int64_problem(value, -MAX_ID - 1, MAX_ID) is None:
            return value
    elif field == "relevance" and type(value) in (int, float) and math.isfinite(value):
        return float(value)
    # A forged cursor is the caller's: whatever the driver could not bind (a NUL, 2^64, 1e400, year 0 in
    # UTC) is refused here as 400, never reaches the query as a 500.
    raise InvalidCursor("the cursor is malformed")


def _convertible(value: datetime) -> bool:
    try:
        value.astimezone(UTC)
    except OverflowError:
        return False
    return True


def _fields_to_row(fields: TaskFields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "description": fields.description,
        "priority": int(fields.priority),
        "tags": list(fields.tags),
        "due_at": fields.due_at,
        "timezone": fields.timezone,
        "recurrence": fields.recurrence.to_json() if fields.recurrence else None,
        "reminders": [r.to_json() for r in fields.reminders],
    }


def _series_columns(series: SeriesRef | None) -> dict[str, Any]:
    return {"series_id": series.id if series else None, "occurrence": series.occurrence if series else None}


def _schedule_columns(fields: TaskFields) -> dict[str, Any]:
    assert fields.recurrence is not None and fields.due_at is not None
    return {"rrule": fields.recurrence.rrule, "anchor": fields.recurrence.anchor, "timezone": fields.timezone,
            "dtstart": fields.due_at}


def _template(fields: TaskFields) -> dict[str, Any]:
    """The fields as JSON, for the series template."""
    row = _fields_to_row(fields)
    return {**row, "due_at": fields.due_at.isoformat() if fields.due_at else None}


def _fields(row: Mapping[str, Any] | RowMapping) -> TaskFields:
    recurrence = row["recurrence"]
    due_at = row["due_at"]
    return TaskFields(
        title=row["title"],
        description=row["description"],
        priority=Priority(row["priority"]),
        tags=tuple(row["tags"]),
        due_at=datetime.fromisoformat(due_at) if isinstance(due_at, str) else due_at,
        timezone=row["timezone"],
        recurrence=Recurrence(recurrence["rrule"], recurrence["anchor"]) if recurrence else None,
        reminders=tuple(_reminder(r) for r in row["reminders"]),
    )


def _row_to_task(row: RowMapping) -> Task:
    series = SeriesRef(row["series_id"], row["occurrence"]) if row["series_id"] is not None else None
    return Task(
        id=row["id"],
        user_id=row["user_id"],
        fields=_fields(row),
        status=Status(row["status"]),
        completed_at=row["completed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
        series=series,
        skipped=bool(row["skipped"]),
    )


def _reminder(data: dict[str, str]) -> Reminder:
    if "before" in data:
        return Reminder(before=parse_duration(data["before"]))
    return Reminder(at=datetime.fromisoformat(data["at"]))
