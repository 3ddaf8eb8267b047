"""Waiting for a process to answer: the one helper the stack, the tests and the benchmarks use."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import httpx


class NotReady(TimeoutError):
    pass


def answers(url: str, expect: tuple[int, ...] = (200,)) -> Callable[[], bool]:
    """A probe: ``url`` answers one of ``expect`` (a refused or reset connection is not an answer)."""
    def probe() -> bool:
        return httpx.get(url, timeout=1.0).status_code in expect
    return probe


def wait_until_ready(probe: Callable[[], bool] | str, *, timeout: float = 60.0, interval: float = 0.1,
                     process: subprocess.Popen[bytes] | None = None, what: str = "") -> float:
    """Poll ``probe`` (or a URL that must answer 200) until it holds; the seconds it took.

    Raises :class:`RuntimeError` as soon as ``process`` exits (no point waiting for a dead server), and
    :class:`NotReady` after ``timeout``.
    """
    check = answers(probe) if isinstance(probe, str) else probe
    name = what or (probe if isinstance(probe, str) else "the probe")
    start = time.perf_counter()
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name}: the process exited with {process.returncode}")
        try:
            if check():
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        if time.perf_counter() - start > timeout:
            raise NotReady(f"{name}: not ready after {timeout} s")
        time.sleep(interval)
