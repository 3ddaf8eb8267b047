"""A real SMTP server's handler (aiosmtpd) that keeps what it receives, for the email channel's tests."""

from __future__ import annotations

from typing import Any


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"
