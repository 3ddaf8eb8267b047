"""The public entry of the real stack and of the cluster (``todo proxy``): the route table over one
process per function, so that a client needs one base URL.

HTTP requests are matched against the route table (404/405 problems for the rest) and forwarded to the
function that serves the route. ``/ws`` is passed through to push-update: the upgrade, its query
(``ticket``, ``since``), the offered subprotocol (``bearer, <token>``) and ``Origin`` go upstream
unchanged; a refusal there is a refusal here (403), and the close code and reason of either side reach
the other.

Connections to the functions are kept alive for less time than the functions keep them (gunicorn's
keep-alive, which functions-framework's uvicorn worker uses, is 2 s; uvicorn's own 5 s): a pooled
connection the function has closed is then never reused. Should one still turn out dead before the
function answered, the request is sent again when that is safe: on a connection that could not be
opened or written (the function never read it), or for a method that is idempotent. Every upstream
failure is logged with its cause, and answered 502 (503 when the connection was refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from .edge import problems
from .edge.problems import HttpProblem, no_route
from .edge.static import WEB_DIR, web_routes
from .routes import HEALTH_PATH, WS_FUNCTION, WS_PATH, NoRoute, match

log = logging.getLogger(__name__)

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
KEEPALIVE_EXPIRY = 1.0  # below the functions' own keep-alive (2 s): see the module docstring
IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
# Nothing reached the function: sending again cannot apply anything twice.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.WriteError, httpx.PoolTimeout)
# The connection died before an answer: the function may have read the request.
NO_ANSWER = (httpx.RemoteProtocolError, httpx.ReadError)
WS_HEADERS = ("sec-websocket-protocol", "origin", "user-agent", "traceparent")
POLICY_VIOLATION = 1008
GOING_AWAY = 1001


def build_proxy_app(upstreams: dict[str, str], web_dir: Path = WEB_DIR) -> Starlette:
    limits = httpx.Limits(max_keepalive_connections=32, keepalive_expiry=KEEPALIVE_EXPIRY)
    client = httpx.AsyncClient(timeout=60.0, limits=limits)

    async def forward(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await _websocket(WebSocket(scope, receive, send), upstreams)
            return
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
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        body = await request.body()
        reply = await _send(client, request.method, url, headers, body, route.function)
        await reply(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    # The web client at / (todo.edge.static), then the route table; never a developer sign-in here.
    routes = [StarletteRoute(HEALTH_PATH, problems.Health("gateway")),
              *web_routes(web_dir), Mount("", app=forward)]
    return Starlette(routes=routes, lifespan=lifespan)


async def _send(client: httpx.AsyncClient, method: str, url: str, headers: list[tuple[str, str]], body: bytes,
                function: str) -> Response:
    path = url.split("?", 1)[0]
    for attempt in (1, 2):
        try:
            upstream = await client.request(method, url, headers=headers, content=body)
        except httpx.TransportError as exc:
            safe = isinstance(exc, NOT_SENT) or (isinstance(exc, NO_ANSWER) and method in IDEMPOTENT)
            again = attempt == 1 and safe
            log.warning("upstream failed" + ("; sending again" if again else ""),
                        extra={"upstream": function, "method": method, "path": path, "attempt": attempt,
                               "cause": f"{type(exc).__name__}: {exc}"})
            if again:
                continue
            if isinstance(exc, httpx.ConnectError):
                return HttpProblem(503, "Service unavailable", f"{function} is not reachable",
                                   headers={"Retry-After": "1"}).response()
            return HttpProblem(502, "Bad gateway", f"{function} is not answering").response()
        return Response(upstream.content, status_code=upstream.status_code,
                        headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP})
    raise AssertionError("unreachable")


async def _websocket(socket: WebSocket, upstreams: dict[str, str]) -> None:
    """Pass one WebSocket through to push-update, refusing here what it refuses there."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

    if socket.url.path != WS_PATH or WS_FUNCTION not in upstreams:
        await socket.close(code=POLICY_VIOLATION)
        return
    target = upstreams[WS_FUNCTION].replace("http://", "ws://", 1).replace("https://", "wss://", 1) + WS_PATH
    if socket.url.query:
        target += "?" + socket.url.query
    offered = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    extra = {k: v for k, v in socket.headers.items() if k in WS_HEADERS and k != "sec-websocket-protocol"}
    origin = extra.pop("origin", None)
    if "host" in socket.headers:  # push-update's same-origin check compares the page's origin with it
        extra["x-forwarded-host"] = socket.headers["host"]
    try:
        upstream = await connect(target, subprotocols=offered or None,  # type: ignore[arg-type]
                                 additional_headers=extra, origin=origin, open_timeout=30,  # type: ignore[arg-type]
                                 max_size=None, ping_interval=None)
    except InvalidStatus as exc:  # push-update refused the upgrade (403): refuse ours the same way
        await socket.close(code=POLICY_VIOLATION)
        log.info("websocket refused upstream", extra={"upstream": WS_FUNCTION, "status": exc.response.status_code})
        return
    except (OSError, WebSocketException, TimeoutError) as exc:
        log.warning("upstream failed", extra={"upstream": WS_FUNCTION, "path": WS_PATH,
                                              "cause": f"{type(exc).__name__}: {exc}"})
        await socket.close(code=1011)
        return
    await socket.accept(subprotocol=upstream.subprotocol)

    async def downstream() -> None:  # push-update → client
        try:
            async for message in upstream:
                if isinstance(message, bytes):
                    await socket.send_bytes(message)
                else:
                    await socket.send_text(message)
        except ConnectionClosed:
            pass
        rcvd = upstream.close_code or GOING_AWAY
        reason = upstream.close_reason or ""
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await socket.close(code=rcvd, reason=reason)

    async def upstream_bound() -> None:  # client → push-update
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    await upstream.close(code=message.get("code", 1000))
                    return
                if message.get("text") is not None:
                    await upstream.send(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send(message["bytes"])
        except ConnectionClosed:
            return

    tasks = [asyncio.create_task(downstream()), asyncio.create_task(upstream_bound())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await upstream.close()
