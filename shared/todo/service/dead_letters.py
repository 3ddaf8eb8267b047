"""Dead letters: the events a consumer gave up on, each kept with the consumer, the reason and the attempts.

An event becomes one when a consumer finds it poison (it cannot be applied, and never will: a shape we
do not take, a value no rule accepts, an exception that came back on every local attempt), or when the
embedded relay has spent its retry budget on it. It is kept in the ``dead_letters`` table, which
``todo dead-letters`` lists, and on the real stack also published to the dead-letter topic of the topic
it came from (``<topic>.dlq``): daprd's own dead-lettering forwards the original event only, so the
reason would be lost on the way (see docs/delivery.md).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

MAX_REASON = 1000  # Knative keeps the first 1024 bytes of a refusal's body with the dead-lettered event


@dataclass(frozen=True)
class DeadLetter:
    consumer: str  # the function that gave up ("on-task-event"), or "outbox-relay"
    topic: str | None  # where the event came from, when known
    event: Mapping[str, Any] | str  # the CloudEvent as it arrived, or the body when it was none
    reason: str
    attempts: int
    at: datetime

    @property
    def event_id(self) -> str | None:
        return _attribute(self.event, "id")

    @property
    def event_source(self) -> str | None:
        return _attribute(self.event, "source")

    def event_json(self) -> str:
        """The event as JSON text that every store can keep: ASCII-escaped, so a NUL or a lone surrogate in
        it (the reason it may be poison) survives as an escape."""
        return json.dumps(self.event, ensure_ascii=True, separators=(",", ":"), default=str)

    def to_json(self) -> dict[str, Any]:
        return {"consumer": self.consumer, "topic": self.topic, "reason": self.reason, "attempts": self.attempts,
                "event": json.loads(self.event_json())}


def reason_of(text: str) -> str:
    """A reason fit to store, log and answer: control characters escaped, at most MAX_REASON characters."""
    cleaned = "".join(ch if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs")
                      else ch.encode("unicode_escape").decode("ascii") for ch in text)
    return cleaned if len(cleaned) <= MAX_REASON else cleaned[: MAX_REASON - 1] + "…"


def _attribute(event: Mapping[str, Any] | str, name: str) -> str | None:
    value = event.get(name) if isinstance(event, Mapping) else None
    return value[:500] if isinstance(value, str) and value else None


class DeadLetterSink(Protocol):
    def send(self, letter: DeadLetter, *, publish: bool) -> bool:
        """Keep the letter where its deliverer's dead letters go: True once it is kept there with its reason
        (``publish``: on the dead-letter topic too, where one is configured); False when it could not be."""
        ...
