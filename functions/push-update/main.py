"""push-update: live changes on WebSockets (/ws), replay over HTTP (/changes), one-use tickets.

Served as an ASGI app (``uvicorn main:app``): functions-framework's own server routes HTTP only,
so the function's HTTP target is mounted next to the WebSocket route, as its aio module allows.
"""

from __future__ import annotations

from functions_framework import aio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from todo.edge.events import EventFunction, IncomingEvent, Poison
from todo.edge.http import Call, HttpFunction, Reply
from todo.edge.push import HUB, websocket_endpoint
from todo.edge.schemas import ChangesQueryIn, push_message
from todo.routes import WS_PATH
from todo.runtime import Runtime

fn = HttpFunction("push-update")


@fn.handler("createWsTicket")
def create_ticket(call: Call) -> Reply:
    return Reply({"ticket": call.runtime.push_store.issue_ticket(call.user, call.runtime.now()),
                  "expires_in": 30}, 201)


@fn.handler("listChanges")
def list_changes(call: Call) -> Reply:
    query = call.query_model(ChangesQueryIn)
    store = call.runtime.push_store
    return Reply({"items": store.since(call.user.user_id, query.since, query.limit),
                  "last_seq": store.last(call.user.user_id)})


def handle(runtime: Runtime, event: IncomingEvent) -> None:
    try:
        user_id, message = push_message(event.type, event.data)
    except ValueError as exc:  # pydantic's ValidationError too
        raise Poison.of(exc) from exc
    HUB.deliver(user_id, message)


events = EventFunction("push-update", handle, runtime_of=fn)


@aio.http
async def push_update(request: Request) -> Response:
    return await (events if request.url.path == events.events_path else fn)(request)


async def websocket(socket: WebSocket) -> None:
    await websocket_endpoint(socket, fn.runtime)


app = Starlette(routes=[
    WebSocketRoute(WS_PATH, websocket),
    Route("/{path:path}", push_update, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
])
