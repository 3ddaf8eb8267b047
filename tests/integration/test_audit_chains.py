"""The audit trail as a chain per partition: chains do not wait on each other, and the trail recorded
before chains is carried over verifiable (migration 0011)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import Engine, make_url

from todo.adapters.audit_store import SqlAuditUnitOfWork
from todo.adapters.migrate import upgrade
from todo.domain.audit import ChainHead, Occurrence, append
from todo.service import audit

from ..conftest import PG_URL

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def users_on_chains(*chains: int) -> list[str]:
    """A user id whose entries go to each of ``chains``, in that order."""
    found: dict[int, str] = {}
    n = 0
    while not set(chains) <= set(found):
        user = f"user-{n}"
        found.setdefault(audit.chain_of(occurrence(user)), user)
        n += 1
    return [found[c] for c in chains]


def occurrence(user: str, n: int = 0, task_id: int = 1) -> Occurrence:
    return Occurrence(f"{user}-{n}-{uuid.uuid4().hex[:6]}", "/todo/functions/update-task", "task.updated", user,
                      task_id, T0 + timedelta(minutes=n), {"id": task_id, "n": n}, version=n + 1)


def test_an_append_to_one_chain_does_not_wait_for_another_chains_open_transaction(engine: Engine) -> None:
    """The head of chain A locked by an unfinished batch: B's appends go through meanwhile, A's next
    one waits for it (on PostgreSQL; SQLite has one writer for the whole database)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks per chain: PostgreSQL (SQLite serialises every writer anyway)")
    a, b = users_on_chains(3, 7)
    holder = SqlAuditUnitOfWork(engine)
    with holder:
        holder.audit.lock_heads([3], T0)
        other = audit.record(SqlAuditUnitOfWork(engine), occurrence(b), T0)  # would block on one head
        assert other is not None and other.chain == 7
        same: list[object] = []
        waiting = threading.Thread(target=lambda: same.append(audit.record(SqlAuditUnitOfWork(engine),
                                                                            occurrence(a), T0)))
        waiting.start()
        waiting.join(1.0)
        assert waiting.is_alive() and same == [], "an append to the locked chain did not wait"
    waiting.join(30)
    [entry] = same
    assert getattr(entry, "chain", None) == 3
    assert audit.verify(SqlAuditUnitOfWork(engine)).ok


def test_verify_reports_every_chain_with_its_head_and_a_checkpoint_over_them(engine: Engine) -> None:
    a, b = users_on_chains(2, 9)
    audit.record_many(SqlAuditUnitOfWork(engine), [occurrence(a, 0), occurrence(b, 0), occurrence(a, 1)], T0)
    result = audit.verify(SqlAuditUnitOfWork(engine))
    assert result.ok and result.checked == 3
    assert [(c.chain, c.head.length, c.result.checked) for c in result.chains] == [(2, 2, 2), (9, 1, 1)]
    before = result.checkpoint
    audit.record(SqlAuditUnitOfWork(engine), occurrence(b, 1), T0)
    assert audit.verify(SqlAuditUnitOfWork(engine)).checkpoint != before


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0010(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database migrated up to the revision before chains."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'todo.db'}")
        upgrade(engine, "0010")
        yield engine
        engine.dispose()
        return
    if not PG_URL:
        pytest.skip("no PostgreSQL: set TODO_TEST_DATABASE_URL (make test does)")
    name = f"todo_0010_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(make_url(PG_URL).set(database=name), connect_args={"ssl_context": False})
    upgrade(engine, "0010")
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrating_keeps_the_one_chain_recorded_before_as_chain_0_and_the_trail_verifies_before_and_after(
        at_0010: Engine) -> None:
    from sqlalchemy import MetaData, Table

    schema = MetaData()  # the tables as revision 0010 left them, not as todo.adapters.tables has them now
    old_log = Table("audit_log", schema, autoload_with=at_0010)
    old_head = Table("audit_chain_head", schema, autoload_with=at_0010)
    head, rows = ChainHead(), []
    for n, user in enumerate(users_on_chains(0, 4, 0, 11)):  # as the one chain recorded them: seq 1 … 4
        entry = replace(append(head, occurrence(user, n, task_id=n + 1), None, T0), position=None)
        entry = replace(entry, hash=entry.computed_hash())
        rows.append({c.name: getattr(entry, c.name) for c in old_log.columns})
        head = ChainHead(entry.seq, entry.hash)
    with at_0010.begin() as conn:
        conn.execute(insert(old_log), rows)
        conn.execute(insert(old_head).values(id=1, length=head.length, hash=head.hash, updated_at=T0))

    upgrade(at_0010)
    carried = audit.verify(SqlAuditUnitOfWork(at_0010))
    assert carried.ok and carried.checked == 4
    assert [(c.chain, c.head) for c in carried.chains] == [(0, head)]  # the old head is chain 0's

    a, b = users_on_chains(0, 4)  # after the migration, a user's entries go to their own chain
    recorded = audit.record_many(SqlAuditUnitOfWork(at_0010), [occurrence(a, 5), occurrence(b, 6)], T0)
    assert [(e.seq, e.chain, e.position) for e in recorded if e is not None] == [(5, 0, 5), (6, 4, 1)]
    result = audit.verify(SqlAuditUnitOfWork(at_0010))
    assert result.ok and result.checked == 6
    assert [(c.chain, c.head.length) for c in result.chains] == [(0, 5), (4, 1)]


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from todo.adapters.migrate import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_downgrading_works_before_any_entry_is_on_a_chain_and_is_refused_after(
        at_0010: Engine) -> None:
    upgrade(at_0010)
    downgrade(at_0010, "0010")  # nothing recorded on chains yet: one chain holds it all
    with at_0010.connect() as conn:
        assert conn.execute(text("SELECT id, length FROM audit_chain_head")).all() == []
    upgrade(at_0010)
    audit.record(SqlAuditUnitOfWork(at_0010), occurrence(users_on_chains(0)[0]), T0)
    with pytest.raises(RuntimeError, match="sharded chains"):
        downgrade(at_0010, "0010")
    assert audit.verify(SqlAuditUnitOfWork(at_0010)).ok  # refused whole: the trail is as it was


def test_deliveries_of_any_size_append_with_the_same_two_statement_texts(engine: Engine) -> None:
    """On PostgreSQL a delivery's claims and entries go as one JSON parameter each: one text per statement
    whatever the number of events (a multi-row VALUES had one per count), and the trail still verifies."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the JSON-parameter appends are PostgreSQL's")
    from sqlalchemy import event

    sent: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    for size in (1, 7, 120):
        batch = [occurrence(f"size-{size}", n, task_id=size) for n in range(size)]
        assert all(e is not None for e in audit.record_many(SqlAuditUnitOfWork(engine), batch, T0))
    inserts = {s for s in sent if s.startswith(("INSERT INTO audit_log", "INSERT INTO processed_events"))}
    assert len(inserts) == 2, inserts  # the claims and the entries, whatever the delivery's size
    result = audit.verify(SqlAuditUnitOfWork(engine))
    assert result.ok and result.checked == 128
