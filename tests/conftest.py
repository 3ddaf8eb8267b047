"""Fixtures shared by every tier.

Integration tests run on both databases: SQLite always, PostgreSQL when ``TODO_TEST_DATABASE_URL``
names a server (``make test`` starts one). With ``TODO_REQUIRE_POSTGRES=1`` (set by ``make test``) a
missing server fails the run instead of skipping half of it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from todo.adapters.db import make_engine
from todo.adapters.migrate import upgrade
from todo.adapters.tables import AUDIT_TABLES, metadata
from todo.edge.auth import mint
from todo.runtime import Runtime
from todo.settings import Settings
from todo_dev import ports

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("TODO_TEST_DATABASE_URL")
SECRET = "test-secret-" + "x" * 32


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver's stub server on a port of this run's test block, not an outgoing one."""
    return "127.0.0.1", ports.test_port(50)


def base_settings(tmp_path: Path, **changes: object) -> Settings:
    return Settings(data_dir=tmp_path, jwt_secret=SECRET, outbox_sweep_seconds=3600.0).with_(**changes)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if not PG_URL:
        if os.environ.get("TODO_REQUIRE_POSTGRES") == "1":
            pytest.fail("TODO_TEST_DATABASE_URL is not set but TODO_REQUIRE_POSTGRES=1")
        pytest.skip("no PostgreSQL: set TODO_TEST_DATABASE_URL (make test does)")
    name = f"todo_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield base_settings(tmp_path)
        return
    url = request.getfixturevalue("pg_database")
    # make test's PostgreSQL listens on loopback without TLS; tests/integration/test_database_tls.py
    # starts one that takes TLS only.
    settings = base_settings(tmp_path, database_url=url, database_sslmode="disable")
    yield settings
    engine = create_engine(url)
    with engine.begin() as conn:
        # The audit tables refuse TRUNCATE (their triggers); a test reset, and only that, turns them off.
        for name in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {name} DISABLE TRIGGER USER"))
        conn.execute(text(f"TRUNCATE {', '.join(metadata.tables)} RESTART IDENTITY CASCADE"))
        for name in AUDIT_TABLES:
            conn.execute(text(f"ALTER TABLE {name} ENABLE TRIGGER USER"))
    engine.dispose()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    if settings.embedded:
        upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Iterator[Runtime]:
    runtime = Runtime(settings)
    runtime.__dict__["engine"] = engine  # share the migrated engine
    yield runtime
    runtime.close()


@pytest.fixture
def token(settings: Settings):  # type: ignore[no-untyped-def]
    def make(sub: str = "alice", roles: list[str] | None = None, ttl: int = 3600) -> str:
        return mint(settings, sub, roles, ttl)

    return make


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Every span todo.tracing starts, kept in memory (the SDK is imported here, not for every test)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from todo import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("tests"))
    yield exporter
    provider.shutdown()
