"""The HTTP edge shared by every HTTP function.

A function declares one handler per row of the route table it owns. This module matches the path,
authenticates, reads the body within its size limit, runs the handler in a worker thread (the
database driver blocks) and maps every outcome to a response: the handler's reply, or a problem.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from .. import logs, metrics, tracing
from ..adapters.failures import is_transient
from ..domain.errors import InvalidTask, TaskNotFound, VersionMismatch
from ..limits import MAX_ID, MAX_ID_DIGITS, MAX_JSON_DEPTH
from ..routes import HEALTH_PATH, METRICS_PATH, READY_PATH, NoRoute, Route, match, routes_of, ticks_of
from ..runtime import Runtime
from ..service.queries import InvalidCursor
from ..service.tasks import Context
from .auth import Principal, Unauthorized
from .function import RuntimeBound
from .observe import metrics_response, ready
from .problems import (
    BAD_CURSOR,
    FORBIDDEN,
    MALFORMED_JSON,
    NO_TASK,
    STALE,
    TOO_LARGE,
    UNAUTHORIZED,
    UNAVAILABLE,
    UNSUPPORTED_TYPE,
    HttpProblem,
    field_errors,
    health,
    invalid,
    no_route,
)
from .threads import in_thread
from .ticks import HANDLERS

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
JSON_TYPES = ("application/json", "application/merge-patch+json")

@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        if self.body is None:
            return Response(status_code=self.status, headers=self.headers)
        content = json.dumps(self.body, separators=(",", ":"), ensure_ascii=False)
        return Response(content, status_code=self.status, headers=self.headers, media_type="application/json")


@dataclass
class Call:
    """One request, as a handler sees it."""

    runtime: Runtime
    function: str
    route: Route
    params: dict[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    principal: Principal | None

    @property
    def user(self) -> Principal:
        assert self.principal is not None, "route declared auth=False"
        return self.principal

    def context(self) -> Context:
        return Context(self.user.user_id, self.function, self.runtime.now())

    def require_role(self, *roles: str) -> None:
        """403 unless the caller holds one of ``roles``."""
        if not any(self.user.has(role) for role in roles):
            raise FORBIDDEN.problem(f"this needs the role {' or '.join(roles)}")

    def task_id(self) -> int:
        raw = self.params.get("id", "")
        # Not a number cannot name a task: the same 404 as someone else's task, nothing to learn.
        if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_ID_DIGITS or int(raw) > MAX_ID:
            raise TaskNotFound(raw)
        return int(raw)

    def json(self) -> Any:
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            raise UNSUPPORTED_TYPE.problem(f"send {' or '.join(JSON_TYPES)}",
                                           headers={"Accept-Patch": "application/merge-patch+json"})
        depth = json_depth(self.body)
        if depth > MAX_JSON_DEPTH:
            raise MALFORMED_JSON.problem(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MALFORMED_JSON.problem(str(exc)) from exc

    def model(self, cls: type[M], data: Any = None) -> M:
        try:
            return cls.model_validate(self.json() if data is None else data)
        except ValidationError as exc:
            raise invalid(field_errors(exc)) from exc

    def query_model(self, cls: type[M]) -> M:
        try:
            return cls.model_validate(dict(self.query))
        except ValidationError as exc:
            raise invalid(field_errors(exc), "The query parameters are not valid") from exc

    def if_match(self) -> Collection[int] | None:
        """Versions named by ``If-Match`` (``None``: no precondition)."""
        header = self.headers.get("if-match")
        if header is None or header.strip() == "*":
            return None
        versions = set()
        for tag in header.split(","):
            tag = tag.strip().removeprefix("W/").strip('"')
            if tag.isdigit():
                versions.add(int(tag))
        return versions


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(body: bytes, stop: int = MAX_JSON_DEPTH) -> int:
    """How deep a JSON text nests (up to ``stop + 1``: it stops counting there), read before parsing it,
    so that neither the parser nor anything that walks the value later recurses into a hostile body."""
    if body.count(b"[") + body.count(b"{") <= stop:  # the usual body: too few brackets to matter
        return 0
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(body):
        char = token.group()[:1]
        if char in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop:
                    return deepest
        elif char in (b"]", b"}"):
            depth -= 1
    return deepest


Handler = Callable[[Call], Reply]


class HttpFunction(RuntimeBound):
    """The HTTP entry of one function: ``await fn(request)`` from a functions-framework target."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.routes = routes_of(name)
        self.ticks = {t.path: HANDLERS[t.name] for t in ticks_of(name)}
        self.handlers: dict[str, Handler] = {}

    def handler(self, operation: str) -> Callable[[Handler], Handler]:
        if operation not in {r.operation for r in self.routes}:
            raise ValueError(f"{self.name} serves no route {operation!r} in the route table")

        def register(fn: Handler) -> Handler:
            self.handlers[operation] = fn
            return fn

        return register

    async def __call__(self, request: Request) -> Response:
        with logs.context(function=self.name, traceparent=request.headers.get("traceparent")):
            path = request.url.path
            if path == HEALTH_PATH:
                return health(self.name, request.method)
            if path == READY_PATH and request.method in ("GET", "HEAD"):
                return await ready(self.runtime, self.name)
            if path == METRICS_PATH and request.method in ("GET", "HEAD"):
                return await metrics_response(self.runtime, self.name)
            self.runtime  # noqa: B018 -- composed now (and tracing with it), before the request's span starts
            if path in self.ticks:  # a cron tick is no change: no trace of its own (one a second would bury the
                return (await self._serve(request))[0]  # changes' traces); what a tick causes opens its own span
            started = time.perf_counter()
            with tracing.span(f"{request.method} {path}", kind="server", parent=request.headers.get("traceparent"),
                              attributes={"http.request.method": request.method}) as span:
                response, operation = await self._serve(request)
                route = next((r for r in self.routes if r.operation == operation), None)
                if span is not None and route is not None:  # named after the route: ids stay out of span names
                    span.update_name(f"{request.method} {route.path}")
                    tracing.set_attribute(span, "http.route", route.path)
                tracing.set_attribute(span, "http.response.status_code", response.status_code)
            if operation is not None:  # a row of the route table, or "unmatched": a bounded label
                metrics.HTTP_REQUESTS.inc(function=self.name, operation=operation, status=str(response.status_code))
                metrics.HTTP_DURATION.observe(time.perf_counter() - started, function=self.name, operation=operation)
            return response

    async def _serve(self, request: Request) -> tuple[Response, str | None]:
        """The answer, and the operation it counts under (None: a tick, not an API request)."""
        path = request.url.path
        tick = self.ticks.get(path)
        if tick is not None and request.method in ("POST", "OPTIONS"):
            # daprd's cron binding: OPTIONS once at start-up, then a POST with an empty body per tick.
            if request.method == "POST":
                await in_thread(tick, self.runtime)
            return Response(status_code=200), None
        try:
            route, params = match(request.method, path, self.routes)
        except NoRoute as exc:
            return no_route(exc, path).response(), "unmatched"
        runtime = self.runtime
        task_id = params.get("id")
        logs.bind(operation=route.operation, task_id=int(task_id) if task_id and task_id.isdigit() else None)
        if task_id and task_id.isdigit():
            tracing.tag("todo.task_id", int(task_id))
        try:
            body = await _read_body(request, runtime.base_settings.max_body_bytes)
        except HttpProblem as problem:
            return problem.response(), route.operation
        call = Call(runtime, self.name, route, params, request.query_params, request.headers, body, None)
        response = await in_thread(self._handle, call)
        if request.method == "HEAD":
            response.body = b""
        return response, route.operation

    def _handle(self, call: Call) -> Response:
        try:
            if call.route.auth:
                call.principal = call.runtime.verifier.verify_header(call.headers.get("authorization"))
                logs.bind(user_id=call.principal.user_id)
            return self.handlers[call.route.operation](call).response()
        except HttpProblem as problem:
            return problem.response()
        except Unauthorized as exc:
            challenge = "Bearer" + (f' error="{exc.error}"' if exc.error else "")
            return UNAUTHORIZED.problem(exc.detail, headers={"WWW-Authenticate": challenge}).response()
        except TaskNotFound:
            return NO_TASK.problem("no such task").response()
        except VersionMismatch as exc:
            headers = {"ETag": f'"{exc.current}"'} if exc.current > 0 else {}
            return STALE.problem("the task has changed since you read it; read it again and retry",
                                 headers=headers).response()
        except InvalidTask as exc:
            return invalid(exc.errors).response()
        except InvalidCursor as exc:
            return BAD_CURSOR.problem(str(exc)).response()
        except Exception as exc:
            if is_transient(exc):  # the database is restarting or unreachable: the moment, not the request
                log.warning("database unavailable", exc_info=True)
                return UNAVAILABLE.problem("the database cannot be reached; retry shortly",
                                           headers={"Retry-After": "1"}).response()
            log.exception("unhandled error")
            return HttpProblem(500, "Internal error", "the error was logged").response()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TOO_LARGE.problem(f"the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TOO_LARGE.problem(f"the limit is {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:
        raise HttpProblem(400, "Client disconnected") from exc
    return b"".join(chunks)
