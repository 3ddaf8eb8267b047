"""push-update: every change of a user's tasks, live, on all of that user's WebSockets and nobody else's.

The truth is the per-user change feed (numbered in the writer's transaction). Messages from Kafka
(task-updates) wake the connections of their user at once; a poll of the feed's counters every
``POLL_SECONDS`` covers what another replica received. Each connection sends strictly seq after
seq: a duplicate is dropped, a gap is filled from the feed, so a client sees every change once, in
order, whichever process it is connected to.

Authentication happens before the upgrade: a bearer token in ``Sec-WebSocket-Protocol``
(``bearer, <token>``) or a one-use ticket from ``POST /ws/ticket`` in the query. The socket closes
when the token expires. ``Origin``, when a browser sends one, must be on the allow-list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from .. import metrics, tracing
from ..adapters.change_feed import PushStore
from ..routes import WS_FUNCTION as FUNCTION
from ..runtime import Runtime
from .auth import Principal, Unauthorized
from .threads import in_thread

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
BATCH = 500
POLICY_VIOLATION = 1008  # before accept: the upgrade is refused with HTTP 403


@dataclass(eq=False)
class Connection:
    socket: WebSocket
    user_id: str
    last: int
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Messages from events, each with the trace context of the consumer span that handed it over.
    inbox: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)
    behind: bool = True  # the feed has what no event brought: the replay at the start, or the poll saw more


class Hub:
    """The connections of this process, by user; fed from worker threads and the poller."""

    def __init__(self) -> None:
        self.connections: dict[str, set[Connection]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None

    def add(self, connection: Connection) -> None:
        self.loop = asyncio.get_running_loop()
        self.connections.setdefault(connection.user_id, set()).add(connection)
        self._count()

    def remove(self, connection: Connection) -> None:
        users = self.connections.get(connection.user_id)
        if users is not None:
            users.discard(connection)
            if not users:
                del self.connections[connection.user_id]
        self._count()

    def _count(self) -> None:
        metrics.PUSH_CONNECTIONS.set(sum(map(len, self.connections.values())), function=FUNCTION)

    def deliver(self, user_id: str, message: dict[str, Any]) -> None:
        """From any thread: hand a numbered message to the user's connections here."""
        loop = self.loop
        if loop is None or user_id not in self.connections:
            return
        changed_at = _time_of(message)  # the message says when its change was made
        if changed_at is not None:
            metrics.PUSH_LAG.observe(max(0.0, (datetime.now(UTC) - changed_at).total_seconds()), function=FUNCTION)
        loop.call_soon_threadsafe(self._deliver, user_id, message, tracing.current_traceparent())

    def _deliver(self, user_id: str, message: dict[str, Any], traceparent: str | None) -> None:
        for connection in self.connections.get(user_id, ()):
            connection.inbox.append((message, traceparent))
            connection.wake.set()

    def ensure_poller(self, store: PushStore) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(store))

    async def _poll(self, store: PushStore) -> None:
        """Wake connections that are behind their user's counter (a change another replica took)."""
        while self.connections:
            await asyncio.sleep(POLL_SECONDS)
            try:
                latest = await in_thread(store.last_many, list(self.connections))
            except Exception:
                log.exception("push poll failed")
                continue
            for user_id, last in latest.items():
                for connection in self.connections.get(user_id, ()):
                    if last > connection.last:
                        connection.behind = True
                        connection.wake.set()


HUB = Hub()


def _sent(message: dict[str, Any], path: str) -> None:
    """Count a message sent on a socket, and how long after its change it went (``path``: how it came)."""
    metrics.PUSH_MESSAGES.inc(function=FUNCTION)
    changed_at = _time_of(message)
    if changed_at is not None:
        metrics.PUSH_SEND_LAG.observe(max(0.0, (datetime.now(UTC) - changed_at).total_seconds()),
                                      function=FUNCTION, path=path)


def _time_of(message: dict[str, Any]) -> datetime | None:
    try:
        found = datetime.fromisoformat(str(message.get("time")).replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def origin_allowed(origin: str | None, patterns: tuple[str, ...], host: str | None = None) -> bool:
    """Whether a browser's page may open this socket: it comes from an allowed origin, or from the host it
    asked for (the page the gateway served, whatever its public domain). A page on another site cannot
    forge either header, which is what the check is for; a client without a browser sends no Origin."""
    if origin is None:
        return True
    if host and urlsplit(origin).netloc.lower() == host.lower():
        return True
    return any(fnmatch(origin, p) for p in patterns)


async def authenticate(socket: WebSocket, runtime: Runtime) -> tuple[Principal, str | None]:
    """The caller, and the subprotocol to answer with; raises Unauthorized."""
    offered = [p.strip() for p in socket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(offered) == 2 and offered[0].lower() == "bearer":
        principal = await in_thread(runtime.verifier.verify, offered[1])
        return principal, offered[0]
    ticket = socket.query_params.get("ticket")
    if ticket:
        principal_or_none = await in_thread(runtime.push_store.take_ticket, ticket, runtime.now())
        if principal_or_none is None:
            raise Unauthorized("the ticket is unknown, used or expired")
        return principal_or_none, None
    raise Unauthorized("offer 'bearer, <token>' in Sec-WebSocket-Protocol, or ?ticket= from POST /ws/ticket")


async def websocket_endpoint(socket: WebSocket, runtime: Runtime) -> None:
    # Through the gateway the host the browser asked for travels as X-Forwarded-Host (todo.proxy).
    host = socket.headers.get("x-forwarded-host") or socket.headers.get("host")
    if not origin_allowed(socket.headers.get("origin"), runtime.base_settings.ws_origins, host):
        await socket.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    try:
        principal, subprotocol = await authenticate(socket, runtime)
    except Unauthorized as exc:
        await socket.close(code=POLICY_VIOLATION, reason=exc.detail[:120])
        return
    since_raw = socket.query_params.get("since")
    if since_raw is not None and not (since_raw.isdigit() and len(since_raw) < 19):
        await socket.close(code=POLICY_VIOLATION, reason="since must be a seq you received")
        return
    store = runtime.push_store
    # Read before the upgrade completes: every change committed once the client holds an open socket
    # has a higher seq, so none of them can be taken for one it already had.
    start = int(since_raw) if since_raw is not None else await in_thread(store.last, principal.user_id)
    await socket.accept(subprotocol=subprotocol)
    connection = Connection(socket, principal.user_id, start)
    HUB.add(connection)
    HUB.ensure_poller(store)
    connection.wake.set()  # replay what the client missed since ?since=
    reader = asyncio.get_running_loop().create_task(_read_until_closed(socket))
    expires_in = max(0.0, principal.expires_at - datetime.now(UTC).timestamp())
    try:
        await asyncio.wait_for(_serve(connection, store, reader), timeout=expires_in)
    except TimeoutError:
        await socket.close(code=POLICY_VIOLATION, reason="token expired")
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        HUB.remove(connection)


async def _read_until_closed(socket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _serve(connection: Connection, store: PushStore, reader: asyncio.Task[None]) -> None:
    while not reader.done():
        waiter = asyncio.get_running_loop().create_task(connection.wake.wait())
        await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if reader.done():
            return
        connection.wake.clear()
        pending, connection.inbox = connection.inbox, []
        for message, traceparent in sorted(pending, key=lambda m: int(m[0]["seq"])):
            seq = int(message["seq"])
            if seq <= connection.last:
                continue  # seen already (replayed, or from both Kafka and the poll)
            if seq > connection.last + 1:
                await _fill(connection, store, up_to=seq - 1)
            if seq == connection.last + 1:
                # The send ends the change's trace: a child of the consumer span that brought the message.
                sending = tracing.span("push to socket", kind="producer", parent=traceparent, attributes={
                    "messaging.system": "websocket", "todo.seq": seq}) if traceparent else contextlib.nullcontext()
                with sending:
                    await connection.socket.send_json(message)
                _sent(message, "event")
                connection.last = seq
        # The feed is read when it has what no event brought, not after every event: that read cost
        # push-update a quarter of its CPU at bench P3's load (py-spy), and what it found was on its way.
        if connection.behind:
            connection.behind = False
            await _fill(connection, store, up_to=None)


async def _fill(connection: Connection, store: PushStore, up_to: int | None) -> None:
    """Send from the feed what follows ``connection.last`` (up to ``up_to``, or all there is)."""
    while up_to is None or connection.last < up_to:
        batch = await in_thread(store.since, connection.user_id, connection.last, BATCH)
        for message in batch:
            seq = int(message["seq"])
            if up_to is not None and seq > up_to:
                return
            await connection.socket.send_json(message)
            _sent(message, "feed")
            connection.last = seq
        if len(batch) < BATCH:
            return
