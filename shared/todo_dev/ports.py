"""Every port that `make run STACK=real`, the tests and the benchmarks listen on, in one place.

All of them are below 32768: Linux hands 32768-60999 to outgoing connections, and a server listening
there finds its port taken by a client socket now and then.

``TODO_PORT_SLOT=n`` (default 0) moves the test and benchmark ports by ``SLOT_WIDTH·n``, so that two
clones of the project can run ``make test`` side by side on one machine. ``make run STACK=real`` keeps
its well-known ports whatever the slot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SLOT_WIDTH = 400
FIRST_SLOT_PORT = 20000
MAX_SLOT = (32768 - FIRST_SLOT_PORT) // SLOT_WIDTH - 1  # the last slot whose ports all stay below 32768


def slot() -> int:
    raw = os.environ.get("TODO_PORT_SLOT", "0") or "0"
    if not raw.isdigit() or int(raw) > MAX_SLOT:
        raise ValueError(f"TODO_PORT_SLOT must be 0-{MAX_SLOT}, got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class TracingPorts:
    """Where a stack's Jaeger listens (scripts/stack/jaeger.sh), all on 127.0.0.1."""

    otlp_grpc: int
    otlp_http: int
    query: int  # the query API and UI
    query_grpc: int


# `make run STACK=real`: Jaeger's own defaults, where the UI is documented (docs/operations.md).
DEV_TRACING = TracingPorts(otlp_grpc=4317, otlp_http=4318, query=16686, query_grpc=16685)


@dataclass(frozen=True)
class StackPorts:
    """Where one stack listens: a block of 10 ports per function from ``base``, and its engines."""

    base: int  # function i: base + 10·i (app, daprd HTTP, gRPC, internal gRPC, metrics)
    gateway: int
    postgres: int
    kafka: int  # and kafka + 1 for its KRaft controller
    smtp: int  # where on-reminder's daprd sends mail (dapr-components/email.yaml)
    tracing: TracingPorts = DEV_TRACING  # its Jaeger


# `make run STACK=real`: the ports the README and dapr.yaml name.
DEV = StackPorts(base=18000, gateway=8080, postgres=15432, kafka=9092, smtp=2525)


def _block(offset: int) -> int:
    return FIRST_SLOT_PORT + SLOT_WIDTH * slot() + offset


def test_postgres() -> int:
    """The throw-away PostgreSQL of `make test` (integration tests; scripts/test.sh starts it)."""
    return _block(110)


def system() -> StackPorts:
    """The real stack of tests/system."""
    return StackPorts(base=_block(0), gateway=_block(80), postgres=_block(111), kafka=_block(120),
                      smtp=_block(125), tracing=tracing())


def tracing() -> TracingPorts:
    """The Jaeger of tests/system: spare test ports 61-64."""
    return TracingPorts(otlp_grpc=test_port(61), otlp_http=test_port(62), query=test_port(63),
                        query_grpc=test_port(64))


def test_port(n: int) -> int:
    """The n-th spare port of the test block (0-69): servers that one test starts. Taken: 0-4 the
    golden-delivery daprd, 5-9 push-update's second replica, 10-29 embedded servers (tests/e2e),
    30-39 browser tests, 40-49 TLS servers, 50 pytest-httpserver, 51 a dropping upstream, 60 SMTP,
    61-64 the Jaeger of tests/system (tracing()), 65 metrics tools, 66-67 functions whose logs tests
    read, 69 a port nothing listens on."""
    if not 0 <= n < 70:
        raise ValueError("a test port number is 0-69")
    return _block(130 + n)


def bench() -> StackPorts:
    """The stack of bench/: its own block, so a benchmark never meets a test's or `make run`'s engines."""
    return StackPorts(base=_block(200), gateway=_block(280), postgres=_block(290), kafka=_block(292),
                      smtp=_block(295), tracing=TracingPorts(*(_block(n) for n in range(296, 300))))


def chaos() -> StackPorts:
    """The stack of `make chaos`: the bench block, one of the two at a time (each refuses to start on
    ports in use). The short chaos run of `make test` uses the system tests' stack."""
    return bench()


def bench_port(n: int) -> int:
    """The n-th spare port of the bench block (0-99)."""
    if not 0 <= n < 100:
        raise ValueError("a bench port number is 0-99")
    return _block(300 + n)


if __name__ == "__main__":  # scripts/test.sh: `python -m todo_dev.ports test-postgres`
    import sys

    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "test-postgres":
        print(test_postgres())
    else:
        print("usage: python -m todo_dev.ports test-postgres", file=sys.stderr)
        sys.exit(2)
