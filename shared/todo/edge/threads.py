"""Blocking work (the database driver blocks) off the event loop, for every edge: HTTP, events, WebSocket."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# Starlette's run_in_threadpool, minus its cost on a cold start: the first call imports anyio's
# thread machinery (~15 ms). The same 40 threads at most, and the caller's context variables.
_THREADS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="todo-worker")


async def in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking ``fn`` on a worker thread and wait for it without blocking the event loop."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_THREADS, call)
