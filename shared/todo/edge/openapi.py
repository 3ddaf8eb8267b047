"""The OpenAPI 3.1 document, generated from the route table and the models that validate requests."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..routes import ROUTES, Route
from ..service.audit import READER_ROLES
from .problems import PROBLEM_TYPE
from .schemas import (
    AuditPage,
    AuditQueryIn,
    AuditVerification,
    ChangesPage,
    ChangesQueryIn,
    Health,
    HistoryQueryIn,
    ListQueryIn,
    NotificationSettingsIn,
    NotificationSettingsOut,
    Problem,
    ScopeIn,
    SnoozeIn,
    SnoozeOut,
    TagCount,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskWrite,
    WsTicket,
)


class _Operation:
    def __init__(self, request: type[BaseModel] | None = None, request_type: str = "application/json",
                 response: type[BaseModel] | None = None, status: int = 200, array: bool = False,
                 query: type[BaseModel] | None = None, etag: bool = False, conditional: bool = False,
                 roles: tuple[str, ...] = ()) -> None:
        self.request, self.request_type, self.response = request, request_type, response
        self.status, self.array, self.query, self.etag, self.conditional = status, array, query, etag, conditional
        self.roles = roles  # any one of them is needed (403 otherwise)


OPERATIONS: dict[str, _Operation] = {
    "createTask": _Operation(TaskWrite, response=TaskOut, status=201, etag=True),
    "listTasks": _Operation(response=TaskPage, query=ListQueryIn),
    "getTask": _Operation(response=TaskOut, etag=True),
    "listTags": _Operation(response=TagCount, array=True),
    "getTaskHistory": _Operation(response=AuditPage, query=HistoryQueryIn),
    "listAudit": _Operation(response=AuditPage, query=AuditQueryIn, roles=READER_ROLES),
    "verifyAudit": _Operation(response=AuditVerification, roles=READER_ROLES),
    "openapi": _Operation(),
    "updateTask": _Operation(TaskPatch, "application/merge-patch+json", TaskOut, query=ScopeIn, etag=True,
                             conditional=True),
    "deleteTask": _Operation(status=204, query=ScopeIn, conditional=True),
    "skipTask": _Operation(response=TaskOut, etag=True, conditional=True),
    "snoozeTask": _Operation(SnoozeIn, response=SnoozeOut),
    "getNotificationSettings": _Operation(response=NotificationSettingsOut),
    "putNotificationSettings": _Operation(NotificationSettingsIn, response=NotificationSettingsOut),
    "createWsTicket": _Operation(response=WsTicket, status=201),
    "listChanges": _Operation(response=ChangesPage, query=ChangesQueryIn),
    "completeTask": _Operation(response=TaskOut, etag=True, conditional=True),
    "reopenTask": _Operation(response=TaskOut, etag=True, conditional=True),
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_TYPE: {"schema": _ref(Problem)}}}


def _operation(route: Route, op: _Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": route.operation, "summary": route.summary,
                           "x-function": route.function, "parameters": []}
    if "{id}" in route.path:
        out["parameters"].append({"name": "id", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 1}})
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema["properties"].items():
            out["parameters"].append({"name": name, "in": "query", "required": False, "schema": prop,
                                      **({"description": prop["description"]} if "description" in prop else {})})
    if op.conditional:
        out["parameters"].append({"name": "If-Match", "in": "header", "required": False,
                                  "schema": {"type": "string"}, "description": "ETag of the version you read"})
    if op.request is not None:
        out["requestBody"] = {"required": True, "content": {op.request_type: {"schema": _ref(op.request)}}}
    ok: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        schema = {"type": "array", "items": _ref(op.response)} if op.array else _ref(op.response)
        ok["content"] = {"application/json": {"schema": schema}}
    elif route.operation == "openapi":
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    if op.etag:
        ok["headers"] = {"ETag": {"schema": {"type": "string"}}}
    if op.status == 201 and op.etag:  # a created task: where it lives
        ok["headers"]["Location"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(op.status): ok}
    if route.auth:
        out["security"] = [{"bearer": []}]
        responses["401"] = _problem("Missing, expired or invalid token")
    if op.roles:
        out["description"] = f"Needs the role {' or '.join(op.roles)} in the token."
        responses["403"] = _problem(f"The token has neither role {' nor '.join(op.roles)}")
    if op.request is not None or op.query is not None:
        responses["400"] = _problem("Malformed request")
        responses["422"] = _problem("Invalid fields; `errors` lists each")
    if op.request is not None:
        responses["413"] = _problem("Body larger than 1 MiB")
        responses["415"] = _problem("Unsupported content type")
    if "{id}" in route.path:
        responses["404"] = _problem("No such task for this user")
    if op.conditional:
        responses["412"] = _problem("If-Match names a version that is not the current one")
    out["responses"] = responses
    if not out["parameters"]:
        del out["parameters"]
    return out


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [TaskWrite, TaskPatch, TaskOut, TaskPage, TagCount, AuditPage,
                                     AuditVerification, SnoozeIn, SnoozeOut, NotificationSettingsIn,
                                     NotificationSettingsOut, ChangesPage, WsTicket, Problem, Health]
    _, schemas = models_json_schema([(m, "validation") for m in models],
                                    ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, OPERATIONS[route.operation])
    paths["/healthz"] = {"get": {"operationId": "health", "summary": "Liveness of the function",
                                 "responses": {"200": {"description": "Alive", "content": {
                                     "application/json": {"schema": _ref(Health)}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "todo task API", "version": "1.0.0",
                 "description": "Tasks with priorities, tags, due dates, reminders, recurrence and search. "
                                "Errors are RFC 9457 problem details."},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
