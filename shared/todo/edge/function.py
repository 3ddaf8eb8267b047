"""What every function object shares: the runtime it runs on, composed by whoever hosts it.

A function process hosted by functions-framework builds its runtime from the environment on the first
request (:meth:`Runtime.from_environment`: the composition root of a standalone function). A host that
serves several functions in one process — the embedded gateway, a test — composes one runtime and binds
it to each function object it loads (:meth:`RuntimeBound.bind`), so that they share one engine, one
outbox relay and one in-process bus.
"""

from __future__ import annotations

import threading
from typing import Self

from .. import logs
from ..runtime import Runtime
from ..settings import get_settings


class RuntimeBound:
    def __init__(self, name: str, *, runtime_of: RuntimeBound | None = None) -> None:
        # At import: the process logs JSON from its first line (gunicorn's master included), named after
        # the function it serves unless its host named it first.
        logs.configure(get_settings().log_level, function=name)
        self.name = name
        self._runtime: Runtime | None = None
        self._runtime_of = runtime_of  # another object of the same module whose runtime this one uses
        self._lock = threading.Lock()

    def bind(self, runtime: Runtime) -> Self:
        self._runtime = runtime
        return self

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            if self._runtime_of is not None:
                return self._runtime_of.runtime
            with self._lock:
                if self._runtime is None:
                    self._runtime = Runtime.from_environment(self.name)
        return self._runtime


def bind_module(module: object, runtime: Runtime) -> None:
    """Bind ``runtime`` to every function object a function's module defines."""
    for value in vars(module).values():
        if isinstance(value, RuntimeBound):
            value.bind(runtime)
