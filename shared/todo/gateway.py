"""The embedded default: every function behind one port, events delivered in-process.

The gateway loads each function's ``main.py`` exactly as functions-framework does in its own
process, and dispatches requests with the route table, so the code that answers here is the code
that answers in the cluster.
"""

from __future__ import annotations

import contextlib
import logging
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

from .adapters.publishers import Subscriber
from .edge.problems import HttpProblem, no_route
from .routes import HEALTH_PATH, HTTP_FUNCTIONS, SUBSCRIPTIONS, NoRoute, match
from .runtime import Runtime, set_runtime

log = logging.getLogger(__name__)
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def load_function(name: str, functions_dir: Path = FUNCTIONS_DIR) -> Any:
    source = functions_dir / name / "main.py"
    return create_asgi_app(target=name.replace("-", "_"), source=str(source))  # type: ignore[no-untyped-call]


class Dispatcher:
    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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


def build_proxy_app(upstreams: dict[str, str]) -> Starlette:
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

    routes = [StarletteRoute(HEALTH_PATH, health, methods=["GET"]), Mount("", app=forward)]
    return Starlette(routes=routes, lifespan=lifespan)


def build_app(runtime: Runtime, functions_dir: Path = FUNCTIONS_DIR) -> Starlette:
    set_runtime(runtime)
    apps = {name: load_function(name, functions_dir) for name in HTTP_FUNCTIONS}
    for sub in SUBSCRIPTIONS:
        if (functions_dir / sub.function / "main.py").exists():
            runtime.bus.subscribe(sub.topic, Subscriber(sub.function, load_function(sub.function, functions_dir),
                                                        sub.path))

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "function": "gateway"})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        runtime.start_relay()  # also sweeps what a previous run committed but did not publish
        runtime.relay.kick()
        try:
            yield
        finally:
            runtime.close()

    routes = [StarletteRoute(HEALTH_PATH, health, methods=["GET"]), Mount("", app=Dispatcher(apps))]
    return Starlette(routes=routes, lifespan=lifespan)
