"""The embedded default: every function behind one port, events delivered in-process.

The gateway loads each function's ``main.py`` exactly as functions-framework does in its own
process, and dispatches requests with the route table, so the code that answers here is the code
that answers in the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from functions_framework._function_registry import load_function_module
from functions_framework.aio import create_asgi_app_from_module
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .adapters.publishers import Subscriber, asgi_post
from .edge import problems
from .edge.dev_sign_in import dev_sign_in_routes
from .edge.function import bind_module
from .edge.problems import no_route
from .edge.static import WEB_DIR, web_routes
from .routes import HEALTH_PATH, SUBSCRIPTIONS, TICKS, WS_FUNCTION, WS_PATH, NoRoute, Tick, match, present
from .runtime import Runtime

log = logging.getLogger(__name__)
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def load_function(name: str, runtime: Runtime, functions_dir: Path = FUNCTIONS_DIR) -> Any:
    """A function's ASGI app on ``runtime``: functions-framework's, or for push-update the module's own
    ``app`` (the framework's server routes HTTP only; the module mounts its target beside the WebSocket).
    The module is loaded as functions-framework loads it, then its function objects are bound to
    ``runtime`` before the first request."""
    source = str(functions_dir / name / "main.py")
    module, spec = load_function_module(source)  # type: ignore[no-untyped-call]
    spec.loader.exec_module(module)
    bind_module(module, runtime)
    if name == WS_FUNCTION:
        return module.app
    return create_asgi_app_from_module(name.replace("-", "_"), source, None, module, spec)  # type: ignore[no-untyped-call]


class Dispatcher:
    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            if scope["path"] == WS_PATH and WS_FUNCTION in self.apps:
                await self.apps[WS_FUNCTION](scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        try:
            route, _ = match(scope["method"], scope["path"])
        except NoRoute as exc:
            await no_route(exc, scope["path"]).response()(scope, receive, send)
            return
        await self.apps[route.function](scope, receive, send)


class Ticker:
    """The embedded stand-in for Dapr's cron bindings: POST /<tick> to each function on schedule."""

    def __init__(self, ticks: list[tuple[Tick, Any]]) -> None:
        self.ticks = ticks
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.ticks:
            self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        due = {i: time.monotonic() for i in range(len(self.ticks))}
        while not self._stop.is_set():
            for i, (tick, app) in enumerate(self.ticks):
                if time.monotonic() >= due[i]:
                    # At a fixed rate, not after the call: the reminder scan works until its next tick.
                    due[i] = max(due[i] + tick.every_seconds, time.monotonic())
                    try:
                        asyncio.run(asgi_post(app, f"/{tick.name}", b"", None))
                    except Exception:
                        log.exception("tick failed", extra={"tick": tick.name})
            self._stop.wait(max(0.0, min(due.values()) - time.monotonic()))


def build_app(runtime: Runtime, functions_dir: Path = FUNCTIONS_DIR, web_dir: Path = WEB_DIR) -> Starlette:
    apps = {name: load_function(name, runtime, functions_dir) for name in present(functions_dir)}
    for sub in SUBSCRIPTIONS:
        if sub.function in apps:
            runtime.bus.subscribe(sub.topic, Subscriber(sub.function, apps[sub.function], sub.path))
    # One function per tick, as in the cluster: in one process they all do the same shared work.
    ticked = [(tick, next(f for f in tick.functions if f in apps)) for tick in TICKS
              if any(f in apps for f in tick.functions)]
    ticker = Ticker([(tick, apps[function]) for tick, function in ticked])

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runtime.start_relay()  # also sweeps what a previous run committed but did not publish
        runtime.relay.kick()
        ticker.start()
        try:
            yield
        finally:
            ticker.stop()
            runtime.close()

    # The developer sign-in only where the server signs with its own generated secret (see its module).
    sign_in = dev_sign_in_routes(runtime.base_settings)
    routes = [StarletteRoute(HEALTH_PATH, problems.Health("gateway")),
              *web_routes(web_dir, dev_sign_in=bool(sign_in)),
              *sign_in, Mount("", app=Dispatcher(apps))]
    return Starlette(routes=routes, lifespan=lifespan)
