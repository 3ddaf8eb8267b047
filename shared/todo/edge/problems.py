"""RFC 9457 problem details: every error this API returns has this shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from ..domain.errors import FieldError
from ..limits import MAX_JSON_DEPTH
from ..routes import NoRoute, Route

PROBLEM_TYPE = "application/problem+json"


@dataclass(frozen=True)
class Refusal:
    """A problem the edge answers, and which operations can meet it: the code raises these and the OpenAPI
    document lists them from here, so that a status cannot be answered without being documented."""

    status: int
    title: str
    description: str
    applies: Callable[[Route], bool]

    def problem(self, detail: str | None = None, **kwargs: Any) -> HttpProblem:
        return HttpProblem(self.status, self.title, detail, **kwargs)


def _writes(route: Route) -> bool:
    return route.method not in ("GET", "HEAD")


def _has_cursor(route: Route) -> bool:
    return route.query is not None and "cursor" in route.query.model_fields


# Each is raised by todo.edge.http (or the uvicorn protocol of todo.edge.transport) for the routes it names.
MALFORMED_JSON = Refusal(400, "Malformed JSON", f"The body is no JSON, or nested deeper than {MAX_JSON_DEPTH}",
                         lambda r: r.request is not None or r.request_type == "application/merge-patch+json")
BAD_CURSOR = Refusal(400, "Bad cursor", "`cursor` is not one this server issued for this query", _has_cursor)
UNAUTHORIZED = Refusal(401, "Unauthorized", "Missing, expired or invalid token", lambda r: r.auth)
FORBIDDEN = Refusal(403, "Forbidden", "The token has none of the roles the operation needs", lambda r: bool(r.roles))
NO_TASK = Refusal(404, "Not found", "No such task for this user (any id that is not one of yours)",
                  lambda r: "{id}" in r.path)
# Answered for a method no route has at a path that exists, so no operation of the document lists it.
WRONG_METHOD = Refusal(405, "Method not allowed", "The path exists, the method does not (`Allow` lists those "
                       "that do)", lambda r: False)
STALE = Refusal(412, "Precondition failed", "If-Match names a version that is not the current one",
                lambda r: r.conditional)
TOO_LARGE = Refusal(413, "Request body too large", "Body larger than TODO_MAX_BODY_BYTES (1 MiB)",
                    lambda r: True)
UNSUPPORTED_TYPE = Refusal(415, "Unsupported media type", "Unsupported content type",
                           lambda r: r.request is not None or r.request_type == "application/merge-patch+json")
# Query parameters and bodies are validated; a write also checks the task it would write (a skip of a task
# that does not recur, text no store keeps), whichever operation it is.
INVALID = Refusal(422, "The request is not valid", "Invalid fields or an impossible change; `errors` lists each",
                  lambda r: r.request is not None or r.query is not None or _writes(r))
HEAD_TOO_LARGE = Refusal(431, "Request header fields too large",
                         "Request line and headers larger than 16 KiB (a token that large is no token)",
                         lambda r: True)
# Not the request but the moment (todo.adapters.failures.is_transient): a client retries after Retry-After.
UNAVAILABLE = Refusal(503, "Service unavailable", "The database cannot be reached at this moment; retry after "
                      "`Retry-After` seconds", lambda r: True)
REFUSALS: tuple[Refusal, ...] = (MALFORMED_JSON, BAD_CURSOR, UNAUTHORIZED, FORBIDDEN, NO_TASK, WRONG_METHOD, STALE,
                                 TOO_LARGE, UNSUPPORTED_TYPE, INVALID, HEAD_TOO_LARGE, UNAVAILABLE)


def refusals_of(route: Route) -> dict[int, list[Refusal]]:
    """The problems ``route`` can answer, by status."""
    out: dict[int, list[Refusal]] = {}
    for refusal in REFUSALS:
        if refusal.applies(route):
            out.setdefault(refusal.status, []).append(refusal)
    return out


class HttpProblem(Exception):
    def __init__(self, status: int, title: str, detail: str | None = None, *,
                 errors: Iterable[FieldError] = (), headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})

    def response(self, instance: str | None = None) -> Response:
        body: dict[str, Any] = {"type": "about:blank", "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return Response(json.dumps(body), status_code=self.status, headers=self.headers, media_type=PROBLEM_TYPE)


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after",))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(FieldError(prefix + loc if loc else prefix.rstrip(".") or "body", message))
    return out


def invalid(errors: list[FieldError], title: str = INVALID.title) -> HttpProblem:
    return HttpProblem(INVALID.status, title, "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def no_route(exc: NoRoute, path: str) -> HttpProblem:
    """405 with ``Allow`` when the path exists under other methods, else 404."""
    if exc.allowed:
        return WRONG_METHOD.problem(headers={"Allow": ", ".join(exc.allowed)})
    return HttpProblem(404, "Not found", f"no resource at {path}")


class Health:
    """The ``/healthz`` endpoint of a Starlette app. An ASGI app, not a function: Starlette then passes it
    every method, where it would answer those a function route does not list itself, in plain text."""

    def __init__(self, function: str) -> None:
        self.function = function

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await health(self.function, scope["method"])(scope, receive, send)


def health(function: str, method: str) -> Response:
    """``/healthz``: the liveness answer to GET and HEAD, 405 to any other method (as every path answers)."""
    if method not in ("GET", "HEAD"):
        return HttpProblem(405, "Method not allowed", headers={"Allow": "GET, HEAD"}).response()
    return Response(json.dumps({"status": "ok", "function": function}), media_type="application/json")
