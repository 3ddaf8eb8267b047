"""Structured logs: one JSON object a line on stderr, with the ids that tie a line to a request or an event.

Every process logs this way, whatever serves it: functions-framework (gunicorn and its uvicorn worker),
uvicorn alone (push-update, ``todo serve``, ``todo proxy``) and the CLI. :func:`configure` installs the
handler on the root logger once per process and takes over the servers' own loggers, which gunicorn and
uvicorn give handlers of their own (plain text) when they start; it runs when a function object is
created (at import, before the server forks) and again when the runtime is built in the worker.

What a line says about its context comes from :func:`context`: the edges bind the function, the
CloudEvent id, source and type, the task and user ids and the W3C ``traceparent`` of the request or
event they are handling, and every line logged meanwhile carries them. A failure carries its exception's
type, message and traceback under ``error``. Nothing that could be a credential is written: fields named
like one are dropped, and bearer tokens, WebSocket tickets and webhook secrets in messages are masked.
Task bodies are never logged (SQLAlchemy is told to hide statement parameters, see todo.adapters.db).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# The servers' loggers: they come with handlers of their own, which write plain text.
SERVER_LOGGERS = ("gunicorn", "gunicorn.error", "gunicorn.access", "uvicorn", "uvicorn.error", "uvicorn.access")
# Quieter than the configured level: httpx logs every request's full URL at INFO; uvicorn an access line
# per request (5 % of create-task's CPU under bench P2), which the request metrics (todo_http_requests_total,
# todo_http_request_duration_seconds), the traces and Knative's queue-proxy request log already say.
QUIET = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "uvicorn.access": logging.WARNING}
_SECRET_FIELD = re.compile(r"token|secret|password|authorization|cookie|ticket", re.IGNORECASE)
_SECRET_TEXT = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1<redacted>"),
    (re.compile(r"(ticket=)[^&\s\"']+"), r"\1<redacted>"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_<redacted>"),
]

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("todo_log_context", default={})  # noqa: B039
_process: dict[str, Any] = {}


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        entry.update(_process)
        entry.update(_context.get())
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        for name in [k for k in entry if _SECRET_FIELD.search(k)]:
            del entry[name]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            entry["error"] = {"type": type(exc).__name__, "message": redact(str(exc)),
                              "traceback": redact("".join(traceback.format_exception(exc)))}
        return json.dumps(entry, default=str, ensure_ascii=False)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours: the one handler every logger of the process writes through."""


def configure(level: str = "INFO", **process: Any) -> None:
    """JSON lines at ``level`` on stderr for the whole process; ``process`` fields (e.g. ``function``)
    go on every line. Safe to call again: the handler is installed once, the level and fields updated."""
    for name, value in process.items():
        _process.setdefault(name, value)  # the process's first say wins: the gateway names itself first
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Handler)), None)
    if handler is None:
        handler = _Handler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
    root.setLevel(level)
    for name in SERVER_LOGGERS:  # take them over: same handler, same format
        server = logging.getLogger(name)
        server.handlers[:] = []
        server.propagate = True
    for name, quiet in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level)))


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values left out) to every line logged inside the block, in this task or thread."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the current context (what became known midway: the user, once authenticated)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


