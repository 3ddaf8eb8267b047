"""query-tasks: every read (list and search, one task, tags, the audit trail) and the OpenAPI document."""

from __future__ import annotations

from functions_framework import aio
from starlette.requests import Request
from starlette.responses import Response

from todo.domain.audit import AuditEntry
from todo.edge import openapi
from todo.edge.http import Call, HttpFunction, Reply
from todo.edge.schemas import AuditQueryIn, HistoryQueryIn, ListQueryIn, settings_json
from todo.edge.tasks_api import task_reply
from todo.service import audit, reminders, tasks

fn = HttpFunction("query-tasks")


@fn.handler("listTasks")
def list_tasks(call: Call) -> Reply:
    query = call.query_model(ListQueryIn).to_query(call.user.user_id, call.runtime.now())
    items, next_cursor = tasks.list_tasks(call.runtime.read_uow(), query)
    return Reply({"items": [t.to_json() for t in items], "next_cursor": next_cursor})


@fn.handler("getTask")
def get_task(call: Call) -> Reply:
    task = tasks.get_task(call.runtime.read_uow(), call.context(), call.task_id())
    if task.etag in call.headers.get("if-none-match", ""):
        return Reply(status=304, headers={"ETag": task.etag})
    return task_reply(task)


@fn.handler("listTags")
def list_tags(call: Call) -> Reply:
    tags = tasks.list_tags(call.runtime.read_uow(), call.context())
    return Reply([{"name": name, "count": count} for name, count in tags])


@fn.handler("getTaskHistory")
def task_history(call: Call) -> Reply:
    page = call.query_model(HistoryQueryIn)
    entries = audit.task_history(call.runtime.audit_uow(), call.user.user_id, call.task_id(),
                                 page.limit, page.cursor)
    return audit_page(*entries)


@fn.handler("listAudit")
def list_audit(call: Call) -> Reply:
    call.require_role(*audit.READER_ROLES)
    query = call.query_model(AuditQueryIn).to_query()
    return audit_page(*audit.find_entries(call.runtime.audit_uow(), query))


@fn.handler("verifyAudit")
def verify_audit(call: Call) -> Reply:
    call.require_role(*audit.READER_ROLES)
    return Reply(audit.verify(call.runtime.audit_uow()).to_json())


def audit_page(items: list[AuditEntry], next_cursor: str | None) -> Reply:
    return Reply({"items": [e.to_json() for e in items], "next_cursor": next_cursor})


@fn.handler("getNotificationSettings")
def notification_settings(call: Call) -> Reply:
    return Reply(settings_json(reminders.settings_of(call.runtime.read_uow(), call.user.user_id)))


@fn.handler("openapi")
def openapi_document(call: Call) -> Reply:
    return Reply(openapi.document())


@aio.http
async def query_tasks(request: Request) -> Response:
    return await fn(request)
