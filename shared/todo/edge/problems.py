"""RFC 9457 problem details: every error this API returns has this shape."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from starlette.responses import Response

from ..domain.errors import FieldError
from ..routes import NoRoute

PROBLEM_TYPE = "application/problem+json"


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


def invalid(errors: list[FieldError], title: str = "The request is not valid") -> HttpProblem:
    return HttpProblem(422, title, "; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)


def no_route(exc: NoRoute, path: str) -> HttpProblem:
    """405 with ``Allow`` when the path exists under other methods, else 404."""
    if exc.allowed:
        return HttpProblem(405, "Method not allowed", headers={"Allow": ", ".join(exc.allowed)})
    return HttpProblem(404, "Not found", f"no resource at {path}")
