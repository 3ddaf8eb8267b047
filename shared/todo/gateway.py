"""The embedded default: every function behind one port, events delivered in-process.

The gateway loads each function's ``main.py`` exactly as functions-framework does in its own
process, and dispatches requests with the route table, so the code that answers here is the code
that answers in the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from functions_framework.aio import create_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .adapters.publishers import Subscriber, asgi_post
from .edge.dev_sign_in import dev_sign_in_routes
from .edge.problems import HttpProblem, no_route
from .edge.static import WEB_DIR, web_routes
from .routes import HEALTH_PATH, HTTP_FUNCTIONS, SUBSCRIPTIONS, TICKS, WS_FUNCTION, WS_PATH, NoRoute, Tick, match
from .runtime import Runtime, set_runtime

log = logging.getLogger(__name__)
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def load_function(name: str, functions_dir: Path = FUNCTIONS_DIR) -> Any:
    """A function's ASGI app: functions-framework's, or for push-update the module's own ``app``
    (the framework's server routes HTTP only; the module mounts its target beside the WebSocket)."""
    source = functions_dir / name / "main.py"
    if name == WS_FUNCTION:
        spec = importlib.util.spec_from_file_location(f"{name.replace('-', '_')}_main", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.app
    return create_asgi_app(target=name.replace("-", "_"), source=str(source))  # type: ignore[no-untyped-call]


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


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length"}


def build_proxy_app(upstreams: dict[str, str], web_dir: Path = WEB_DIR) -> Starlette:
    """The local gateway of the real stack: the route table, forwarding to one process per function."""
    import httpx

    client = httpx.AsyncClient(timeout=60.0)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "function": "gateway"})

    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            route, _ = match(request.method, request.url.path)
        except NoRoute as exc:
            await no_route(exc, request.url.path).response()(scope, receive, send)
            return
        url = upstreams[route.function] + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        try:
            upstream = await client.request(request.method, url, headers=headers, content=await request.body())
        except httpx.TransportError:
            await HttpProblem(502, "Bad gateway", f"{route.function} is not answering").response()(
                scope, receive, send)
            return
        reply = Response(upstream.content, status_code=upstream.status_code,
                         headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP})
        await reply(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    routes = [StarletteRoute(HEALTH_PATH, health, methods=["GET"]), *web_routes(web_dir), Mount("", app=forward)]
    return Starlette(routes=routes, lifespan=lifespan)


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
    set_runtime(runtime)
    apps = {name: load_function(name, functions_dir) for name in HTTP_FUNCTIONS}
    for sub in SUBSCRIPTIONS:
        if (functions_dir / sub.function / "main.py").exists():
            if sub.function not in apps:
                apps[sub.function] = load_function(sub.function, functions_dir)
            runtime.bus.subscribe(sub.topic, Subscriber(sub.function, apps[sub.function], sub.path))
    ticker = Ticker([(tick, apps[f]) for tick in TICKS for f in tick.functions if f in apps])

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "function": "gateway"})

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
    routes = [StarletteRoute(HEALTH_PATH, health, methods=["GET"]), *web_routes(web_dir, dev_sign_in=bool(sign_in)),
              *sign_in, Mount("", app=Dispatcher(apps))]
    return Starlette(routes=routes, lifespan=lifespan)
