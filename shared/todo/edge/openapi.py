"""The OpenAPI 3.1 document, generated from the route table: each route carries its operation's models."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..limits import MAX_ID
from ..routes import ROUTES, Route
from .problems import PROBLEM_TYPE, refusals_of
from .schemas import Health, Problem


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_TYPE: {"schema": _ref(Problem)}}}


def _operation(route: Route) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": route.operation, "summary": route.summary,
                           "x-function": route.function, "parameters": []}
    if "{id}" in route.path:
        out["parameters"].append({"name": "id", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}})
    if route.query is not None:
        schema = route.query.model_json_schema()
        for name, prop in schema["properties"].items():
            out["parameters"].append({"name": name, "in": "query", "required": False, "schema": prop,
                                      **({"description": prop["description"]} if "description" in prop else {})})
    if route.conditional:
        out["parameters"].append({"name": "If-Match", "in": "header", "required": False,
                                  "schema": {"type": "string"}, "description": "ETag of the version you read"})
    if route.request is not None:
        out["requestBody"] = {"required": True, "content": {route.request_type: {"schema": _ref(route.request)}}}
    ok: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        schema = {"type": "array", "items": _ref(route.response)} if route.array else _ref(route.response)
        ok["content"] = {"application/json": {"schema": schema}}
    elif route.operation == "openapi":
        ok["content"] = {"application/json": {"schema": {"type": "object"}}}
    if route.etag:
        ok["headers"] = {"ETag": {"schema": {"type": "string"}}}
    if route.status == 201 and route.etag:  # a created task: where it lives
        ok["headers"]["Location"] = {"schema": {"type": "string"}}
    responses: dict[str, Any] = {str(route.status): ok}
    if route.auth:
        out["security"] = [{"bearer": []}]
    if route.roles:
        out["description"] = f"Needs the role {' or '.join(route.roles)} in the token."
    for status, refusals in sorted(refusals_of(route).items()):
        responses[str(status)] = _problem("; ".join(r.description for r in refusals))
    out["responses"] = responses
    if not out["parameters"]:
        del out["parameters"]
    return out


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    bodies = [m for r in ROUTES for m in (r.request, r.response) if m is not None]
    models: list[type[BaseModel]] = list(dict.fromkeys([*bodies, Problem, Health]))
    _, schemas = models_json_schema([(m, "validation") for m in models],
                                    ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
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
