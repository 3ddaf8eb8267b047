"""Engines for PostgreSQL (pg8000) and the embedded SQLite file."""

from __future__ import annotations

import functools
import select as io_select
import socket
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError

from ..settings import Settings


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    # A statement's parameters are task bodies, tokens' subjects and webhook secrets: never in a log
    # line or an exception's message.
    kwargs.setdefault("hide_parameters", True)
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_size", 8)
    kwargs.setdefault("max_overflow", 8)
    engine = create_engine(url, **kwargs)
    if engine.dialect.driver == "pg8000":
        drop_closed_connections(engine)  # instead of pool_pre_ping: no round trip on every checkout
        # An INSERT of many rows (a task's tags, a change's outbox rows) executes one cached statement that
        # SQLAlchemy sends as one multi-row VALUES: a ``.values([...])`` statement has no cache key and was
        # compiled on every request (a tenth of create-task's CPU, bench P2), and a plain executemany
        # through pg8000 is a round trip per row.
        engine.dialect.use_insertmanyvalues_wo_returning = True
        from .tls import use_database_tls

        _fast_timestamps(engine)
        _no_delay(engine)
        _cached_paramstyle()
        use_database_tls(engine, settings)  # TODO_DATABASE_SSLMODE and its files; verify-full by default
    return engine


def execute_prepared(pooled: Any, sql: str, params: Sequence[Any]) -> list[Any]:
    """Rows of ``sql`` (``$n`` placeholders) on a pooled pg8000 connection (``engine.raw_connection()``, or
    a SQLAlchemy ``Connection.connection``), prepared once per connection and run outside any transaction
    block: one round trip. pg8000 sends a statement through the DB-API in three (parse, describe, execute),
    behind a BEGIN and before a COMMIT of one each. The caller must have no transaction open on it."""
    from pg8000.converters import make_params

    conn: Any = pooled.dbapi_connection
    key = ("todo_prepared", sql)
    prepared = pooled.info.get(key)
    if prepared is None:
        prepared = pooled.info[key] = conn.prepare_statement(sql, ())
    name, columns, input_funcs = prepared
    return list(conn.execute_named(name, make_params(conn.py_types, params), columns, input_funcs, sql).rows or ())


def drop_closed_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling without a round trip: a pooled connection whose server has hung up
    has its end-of-file (or the server's last error) waiting on the socket, seen here by a zero-timeout
    poll at checkout; the pool then connects afresh. Replaces ``pool_pre_ping``, a ``SELECT 1`` round trip
    on every checkout. A connection idle in the pool is owed nothing, so anything readable means it is done.
    """

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        sock = getattr(dbapi_connection, "_usock", None)
        if sock is None:
            return
        try:
            readable, _, _ = io_select.select([sock], [], [], 0)
        except (OSError, ValueError) as exc:
            raise DisconnectionError("the connection's socket is closed") from exc
        if readable:
            raise DisconnectionError("the server closed the connection while it was idle in the pool")


def _cached_paramstyle() -> None:
    """pg8000 turns each statement's ``%s`` placeholders into ``$n`` by scanning the SQL a character at a
    time, on every execute (5 % of create-task's GIL samples under P2 load, py-spy). The result depends on
    the statement's text alone, and SQLAlchemy sends the same few texts over and over: it is computed
    once per text. Installed once per process, on the first PostgreSQL engine."""
    import pg8000.legacy
    from pg8000.dbapi import convert_paramstyle

    if getattr(pg8000.legacy.convert_paramstyle, "cached", False):
        return

    class Names(dict[str, str]):
        def __getitem__(self, key: str) -> str:  # a named parameter's value: its own name
            return key

    @functools.lru_cache(maxsize=1024)
    def shape(style: str, query: str) -> tuple[str, tuple[str, ...] | None]:
        names = Names()
        statement, vals = convert_paramstyle(style, query, names)
        return statement, None if vals is names else tuple(vals)  # None: the values go as given

    def convert(style: str, query: str, args: Any) -> tuple[str, Any]:
        statement, names = shape(style, query)
        return statement, args if names is None else tuple(args[n] for n in names)

    convert.cached = True  # type: ignore[attr-defined]
    pg8000.legacy.convert_paramstyle = convert


def _no_delay(engine: Engine) -> None:
    """TCP_NODELAY on pg8000's socket, which leaves Nagle's algorithm on. pg8000 writes a statement whose
    parameters pass its 8 KiB buffer in several segments; Nagle then holds the last one until the first is
    acknowledged, and the server, waiting for the rest of the message, acknowledges only when its delayed
    ACK fires (40 ms). A delivery of a hundred audit entries waited so on its claims and on its INSERT:
    half its time (bench P7, py-spy). PostgreSQL sets the option on its side of every connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        sock = getattr(dbapi_connection, "_usock", None)
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _fast_timestamps(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        from pg8000.converters import TIMESTAMPTZ

        dbapi_connection.register_in_adapter(TIMESTAMPTZ, parse_timestamptz)


def parse_timestamptz(text: str) -> Any:
    """Read a ``timestamptz`` with ``datetime.fromisoformat`` instead of pg8000's ``strptime``.

    A py-spy profile of query-tasks (P4) put 18 % of its CPU in pg8000's ``timestamptz_in``: four
    timestamps a task, each parsed by ``strptime``. PostgreSQL sends them in ISO form, which
    ``fromisoformat`` reads several times faster; anything else (infinity, BC dates, years past 9999)
    still goes to pg8000's own converter.
    """
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        from pg8000.converters import timestamptz_in

        return timestamptz_in(text)


def upsert(conn: Connection, table: Table) -> Any:
    """An ``INSERT`` that takes ``ON CONFLICT`` clauses, in the connection's dialect.

    Imported on use: the PostgreSQL dialect is loaded already by then, and a PostgreSQL function
    never loads SQLite's (~6 ms of its cold start).
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, open transactions, so that BEGIN IMMEDIATE below is honoured.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can fail
        # with SQLITE_BUSY instead of waiting when another writer committed in between. Reads in
        # autocommit (SqlTransaction read_only) take no lock at all.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
