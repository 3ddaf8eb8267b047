"""Where published events go: a Dapr sidecar (real stack, cluster) or subscribers in this process."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..settings import Settings
from .outbox import Message, Publisher, Undelivered

log = logging.getLogger(__name__)

ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]


class DaprPublisher:
    """Publishes through the sidecar's pub/sub building block, keeping our CloudEvent intact.

    The payload already is a CloudEvent, sent as ``application/cloudevents+json`` so that daprd does
    not wrap it again and a Knative KafkaSource reading the topic passes it through with its own
    attributes. ``cloudevent.id`` pins the id daprd would otherwise replace.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    def _connect(self) -> Any:
        if self._client is None:
            # Imported here: the Dapr SDK pulls in gRPC, which would cost every cold start ~0.4 s.
            from dapr.clients import DaprClient

            from .. import tracing

            # With tracing on, each call carries the current span's traceparent: daprd's publish span is its child.
            self._client = DaprClient(f"127.0.0.1:{self.settings.dapr_grpc_port}",
                                      interceptors=tracing.grpc_interceptors() or None)
        return self._client

    def publish_many(self, topic: str, messages: Sequence[Message]) -> Sequence[Undelivered]:
        """One bulk request: daprd hands the whole batch to the Kafka producer at once (all or a raise)."""
        from dapr.clients import BulkPublishEntry

        entries = [
            BulkPublishEntry(
                event=json.dumps(_keeping_trace(cloud_event), separators=(",", ":")),
                content_type="application/cloudevents+json",
                entry_id=str(index),
                metadata={
                    "partitionKey": partition_key,
                    "cloudevent.id": str(cloud_event["id"]),
                    "cloudevent.source": str(cloud_event["source"]),
                    "cloudevent.type": str(cloud_event["type"]),
                    "content-type": "application/cloudevents+json",
                },
            )
            for index, (partition_key, cloud_event) in enumerate(messages)
        ]
        response = self._connect().publish_events(
            pubsub_name=self.settings.pubsub_name, topic_name=topic, data=entries)
        if response.failed_entries:
            first = response.failed_entries[0]
            raise PublishFailed(f"{len(response.failed_entries)} of {len(entries)} events not published "
                                f"to {topic}: {first.error}")
        return ()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _keeping_trace(cloud_event: dict[str, Any]) -> dict[str, Any]:
    """The event with its ``traceparent`` also as Dapr's own ``traceid``: daprd keeps the trace context of a
    CloudEvent it is given only when ``traceid`` is there (components-contrib ``pubsub.FromCloudEvent``);
    otherwise it writes its publish span's over both, and for a bulk that span is in the trace of the first
    event only (the call's), so every other change's consumers would land in a stranger's trace."""
    traceparent = cloud_event.get("traceparent")
    if not traceparent or "traceid" in cloud_event:
        return cloud_event
    return {**cloud_event, "traceid": traceparent}


@dataclass(frozen=True)
class Subscriber:
    """An event function reached in-process: its ASGI app and the path daprd would POST to."""

    name: str
    app: ASGIApp
    path: str = "/"


class PublishFailed(RuntimeError):
    pass


class InProcessBus:
    """Delivers each event to the subscribed functions' ASGI apps, as daprd would, before returning.

    Delivery is synchronous so that the outbox row is marked published only once every subscriber
    has taken it. What a subscriber did not take is returned to the relay, which plays daprd's part:
    a retry (5xx, ``RETRY``, a delivery that raised) later with backoff, a refusal (``DROP``, 404) as a
    dead letter. Once a message of a partition key is not taken, the later ones of that key in the same
    call are not offered (per-user order); the other keys' go on. Subscribers are idempotent.
    """

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = {}

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        self._subscribers.setdefault(topic, []).append(subscriber)

    def publish_many(self, topic: str, messages: Sequence[Message]) -> list[Undelivered]:
        missed: list[Undelivered] = []
        waiting: set[str] = set()
        for index, (partition_key, cloud_event) in enumerate(messages):
            if partition_key in waiting:
                missed.append(Undelivered(index, None, "an earlier event of its partition key waits"))
                continue
            for subscriber in self._subscribers.get(topic, []):
                verdict, reason = _deliver(subscriber, cloud_event)
                if verdict == "SUCCESS":
                    continue
                final = verdict == "DROP"
                if final:
                    log.warning("event dropped by subscriber", extra={"subscriber": subscriber.name,
                                                                       "ce_id": cloud_event.get("id")})
                else:
                    waiting.add(partition_key)
                missed.append(Undelivered(index, subscriber.name, reason, final=final))
        return missed


def _deliver(subscriber: Subscriber, cloud_event: dict[str, Any]) -> tuple[str, str]:
    try:
        status, body = asyncio.run(asgi_post(subscriber.app, subscriber.path, json.dumps(cloud_event).encode(),
                                             "application/cloudevents+json"))
    except Exception as exc:  # as a connection refused would be to daprd: retried
        log.exception("in-process delivery raised", extra={"subscriber": subscriber.name})
        return "RETRY", f"the delivery raised {type(exc).__name__}: {exc}"
    return _verdict(status, body)


def _verdict(status: int, body: bytes) -> tuple[str, str]:
    """Dapr's reading of a subscriber's answer (see PLATFORM-NOTES), and the reason it gives."""
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {}
    reason = answer.get("reason") if isinstance(answer, dict) else None
    if not isinstance(reason, str) or not reason:
        reason = f"HTTP {status}"
    if status == 404:
        return "DROP", reason
    if status >= 300:
        return "RETRY", reason
    declared = answer.get("status", "SUCCESS") if isinstance(answer, dict) else "SUCCESS"
    verdict = str(declared).upper() or "SUCCESS"  # daprd reads an empty status as success, an unknown one as retry
    return (verdict if verdict in ("SUCCESS", "DROP") else "RETRY"), reason


async def asgi_post(app: ASGIApp, path: str, body: bytes, content_type: str | None) -> tuple[int, bytes]:
    """POST to an ASGI app in this process, as daprd would over HTTP; returns status and body."""
    import httpx  # the embedded gateway only: the other functions never deliver in-process

    headers = {"content-type": content_type} if content_type is not None else {}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 0))
    async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as client:
        response = await client.post(path, content=body, headers=headers)
    return response.status_code, response.content


def make_publisher(settings: Settings, bus: InProcessBus | None = None) -> Publisher:
    if settings.events == "dapr":
        return DaprPublisher(settings)
    return bus if bus is not None else InProcessBus()
