"""The route table: which function serves which method and path, and what the operation takes and gives.

One record per operation: the gateway dispatches with it, each function checks that it serves exactly
its rows, the cluster's gateway and Services are generated from it, and the OpenAPI document is
generated from it (the models are the ones that validate the requests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel

from .edge import schemas as s
from .service.audit import READER_ROLES

MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI template: "/tasks/{id}"
    function: str
    operation: str  # OpenAPI operationId, and the handler's name in the function
    summary: str
    request: type[BaseModel] | None = None  # the body's model
    response: type[BaseModel] | None = None  # the success body's model (a list of it when ``array``)
    status: int = 200  # the success status
    query: type[BaseModel] | None = None  # the query parameters' model
    request_type: str = "application/json"
    array: bool = False
    etag: bool = False  # the success answer carries the task's ETag
    conditional: bool = False  # If-Match is honoured (412)
    roles: tuple[str, ...] = ()  # any one of them is needed (403 otherwise)
    auth: bool = True

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        return re.compile(f"^{regex}$")


ROUTES: tuple[Route, ...] = (
    Route("POST", "/tasks", "create-task", "createTask", "Create a task",
          request=s.TaskWrite, response=s.TaskOut, status=201, etag=True),
    Route("GET", "/tasks", "query-tasks", "listTasks", "List, filter, sort and search the caller's tasks",
          response=s.TaskPage, query=s.ListQueryIn),
    Route("GET", "/tasks/{id}", "query-tasks", "getTask", "Read one task", response=s.TaskOut, etag=True),
    Route("GET", "/tags", "query-tasks", "listTags", "The caller's tags with their task counts",
          response=s.TagCount, array=True),
    Route("GET", "/tasks/{id}/history", "query-tasks", "getTaskHistory",
          "The audit trail of one of the caller's tasks, also once deleted",
          response=s.AuditPage, query=s.HistoryQueryIn),
    Route("GET", "/audit", "query-tasks", "listAudit", "Search the audit trail (auditor, admin)",
          response=s.AuditPage, query=s.AuditQueryIn, roles=READER_ROLES),
    Route("GET", "/audit/verify", "query-tasks", "verifyAudit", "Recompute every audit hash chain (auditor, admin)",
          response=s.AuditVerification, roles=READER_ROLES),
    Route("GET", "/openapi.json", "query-tasks", "openapi", "This document", auth=False),
    Route("PATCH", "/tasks/{id}", "update-task", "updateTask", "Change a task (JSON merge patch)",
          request=s.TaskPatch, request_type=MERGE_PATCH, response=s.TaskOut, query=s.ScopeIn, etag=True,
          conditional=True),
    Route("DELETE", "/tasks/{id}", "update-task", "deleteTask", "Delete a task",
          status=204, query=s.ScopeIn, conditional=True),
    Route("POST", "/tasks/{id}/complete", "update-task", "completeTask", "Mark a task completed",
          response=s.TaskOut, etag=True, conditional=True),
    Route("POST", "/tasks/{id}/reopen", "update-task", "reopenTask", "Mark a completed task open again",
          response=s.TaskOut, etag=True, conditional=True),
    Route("POST", "/tasks/{id}/skip", "update-task", "skipTask",
          "Close this instance of a recurring task without doing it; the next one follows",
          response=s.TaskOut, etag=True, conditional=True),
    Route("POST", "/tasks/{id}/snooze", "update-task", "snoozeTask", "Remind again later",
          request=s.SnoozeIn, response=s.SnoozeOut),
    Route("GET", "/me/notifications", "query-tasks", "getNotificationSettings",
          "The caller's notification channels", response=s.NotificationSettingsOut),
    Route("PUT", "/me/notifications", "update-task", "putNotificationSettings",
          "Choose the caller's notification channels",
          request=s.NotificationSettingsIn, response=s.NotificationSettingsOut),
    Route("POST", "/ws/ticket", "push-update", "createWsTicket",
          "A one-use ticket (30 s) to open /ws where a header cannot carry the token",
          response=s.WsTicket, status=201),
    Route("GET", "/changes", "push-update", "listChanges",
          "The caller's change feed after a seq: what /ws?since= replays, over HTTP",
          response=s.ChangesPage, query=s.ChangesQueryIn),
)

HEALTH_PATH = "/healthz"  # liveness: answers while the process serves, touches nothing
READY_PATH = "/readyz"  # readiness: the database and, where events go through it, the sidecar
METRICS_PATH = "/metrics"  # Prometheus scrapes each function here; never routed by the public gateway
WS_PATH = "/ws"  # the WebSocket of push-update (not an HTTP route: the gateway passes it through)
WS_FUNCTION = "push-update"
HTTP_FUNCTIONS: tuple[str, ...] = tuple(dict.fromkeys(r.function for r in ROUTES))


class NoRoute(LookupError):
    def __init__(self, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(allowed)
        self.allowed = allowed  # non-empty: the path exists, the method does not (405)


def match(method: str, path: str, routes: tuple[Route, ...] = ROUTES) -> tuple[Route, dict[str, str]]:
    allowed: list[str] = []
    for route in routes:
        found = route.pattern.match(path)
        if found is None:
            continue
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            return route, found.groupdict()
        allowed.append(route.method)
    raise NoRoute(tuple(allowed))


def routes_of(function: str) -> tuple[Route, ...]:
    return tuple(r for r in ROUTES if r.function == function)


@dataclass(frozen=True)
class Subscription:
    """An event function consuming a topic: daprd (or the in-process bus) POSTs to ``path``."""

    topic: str
    function: str
    path: str = "/events"


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("task-events", "audit-sink"),
    Subscription("reminders", "audit-sink"),
    Subscription("task-events", "on-task-event"),
    Subscription("reminders", "on-reminder"),
    Subscription("task-updates", "push-update"),
)


@dataclass(frozen=True)
class Tick:
    """A scheduled ``POST /<name>`` to a function, declared once; everything else is derived from it: the
    Dapr cron binding ``dapr-components/<name>.yaml`` (real stack), a Knative PingSource (cluster: a
    scaled-to-zero pod has no sidecar to tick it), a timer in the embedded gateway, and the route each
    function of ``functions`` answers it on. What a tick does is ``todo.edge.ticks.HANDLERS[name]``.

    In the cluster and the embedded gateway one function is ticked (the first present: each does the
    same shared work); on the real stack every one is, by its own daprd.
    """

    name: str
    functions: tuple[str, ...]
    every_seconds: float  # the period on the real stack and embedded
    cluster_every_seconds: float | None = None  # the PingSource's, where it differs (whole minutes)
    # A tick that works until the next one comes is told its period through this setting (a field of
    # todo.settings.Settings): in the cluster it is the PingSource's.
    window_setting: str | None = None
    why: str = ""

    @property
    def path(self) -> str:
        return f"/{self.name}"


TICKS: tuple[Tick, ...] = (
    Tick("reminder-scan", ("on-reminder",), 1.0, window_setting="reminder_window_seconds",
         why="fires each reminder as it falls due until the next tick (lateness target p99 <= 1 s); "
             "duplicate ticks are harmless: the scan claims each due reminder once"),
    # The relay publishes right after each commit: a sweep only collects what a crash left behind, so
    # in the cluster, where each tick may wake a scaled-to-zero pod, every ten minutes is enough.
    Tick("outbox-sweep", ("create-task", "update-task", "on-task-event", "on-reminder"), 15.0,
         cluster_every_seconds=600.0,
         why="publishes what a crash left in the outbox between commit and publish"),
)


def ticks_of(function: str) -> tuple[Tick, ...]:
    return tuple(t for t in TICKS if function in t.functions)


def function_names(routes: tuple[Route, ...] = ROUTES, subscriptions: tuple[Subscription, ...] = SUBSCRIPTIONS,
                   ticks: tuple[Tick, ...] = TICKS) -> tuple[str, ...]:
    """Every function the tables name, in one order: routes, the WebSocket, subscriptions, ticks."""
    return tuple(dict.fromkeys([*(r.function for r in routes), WS_FUNCTION, *(s.function for s in subscriptions),
                                *(f for t in ticks for f in t.functions)]))


# Every function of the system. A deployment has those whose functions/<name>/main.py exists (present()).
FUNCTIONS: tuple[str, ...] = function_names()


def present(functions_dir: Path) -> tuple[str, ...]:
    """The functions of ``FUNCTIONS`` that this tree holds."""
    return tuple(f for f in FUNCTIONS if (functions_dir / f / "main.py").is_file())
