from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    """A request that breaks a rule of the domain."""


@dataclass
class InvalidTask(DomainError):
    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{e.field}: {e.message}" for e in self.errors)


class TaskNotFound(DomainError):
    """No such task for this user (also when it belongs to someone else)."""


@dataclass
class VersionMismatch(DomainError):
    current: int
