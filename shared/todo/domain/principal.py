"""Who is calling: a verified user, their roles, and until when the proof holds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    expires_at: int  # epoch seconds: the token's exp

    def has(self, role: str) -> bool:
        return role in self.roles
