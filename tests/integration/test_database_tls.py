"""PostgreSQL over TLS, against a throw-away server that takes TLS only (ssl=on, hostssl lines only,
password auth), with a CA and a server certificate (for "localhost") made by the test.

The engine the functions and the migration use connects with verify-full; a CA it was not told to
trust, a host name the certificate does not carry, and ``disable`` are each refused with a sentence
that says so, and the password is in none of them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.tls_servers import Pki
from todo.adapters.db import make_engine
from todo.adapters.migrate import upgrade
from todo.adapters.tls import TLSRefused
from todo.settings import ConfigError, Settings
from todo_dev import ports

ROOT = Path(__file__).resolve().parents[2]
PORT = ports.test_port(40)
PASSWORD = "tls-" + secrets.token_urlsafe(16)
# TLS only over TCP; the database mtls also wants a client certificate whose CN is the user's name.
HBA = """\
local all all trust
hostssl mtls all 127.0.0.1/32 scram-sha-256 clientcert=verify-full
hostssl mtls all ::1/128 scram-sha-256 clientcert=verify-full
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
"""


@dataclass(frozen=True)
class TlsPostgres:
    pki: Pki
    client_cert: str
    client_key: str

    def url(self, host: str = "localhost", database: str = "todo") -> str:
        return f"postgresql+pg8000://todo:{PASSWORD}@{host}:{PORT}/{database}"

    def settings(self, tmp_path: Path, host: str = "localhost", **tls: Any) -> Settings:
        return Settings(data_dir=tmp_path, database_url=self.url(host, tls.pop("database", "todo")),
                        database_sslrootcert=self.pki.ca_file).with_(**tls)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgres]:
    folder = tmp_path_factory.mktemp("pg-tls")
    pki = Pki.make(folder / "pki")
    tls_dir = folder / "server"
    pki.trusted.issue("localhost").write(tls_dir, "server")
    (tls_dir / "ca.crt").write_bytes(pki.trusted.cert_pem)  # verifies the clients' certificates
    (tls_dir / "pg_hba.conf").write_text(HBA)
    client_cert, client_key = pki.trusted.issue("todo", client=True).write(folder / "client", "todo")
    env = {**os.environ, "TODO_STACK_DIR": str(folder / "stack"), "PGPORT": str(PORT),
           "PG_TLS_DIR": str(tls_dir), "PG_PASSWORD": PASSWORD}
    script = str(ROOT / "scripts" / "stack" / "postgres.sh")
    subprocess.run([script, "start"], env=env, check=True)
    try:
        admin = create_engine(f"postgresql+pg8000://todo:{PASSWORD}@127.0.0.1:{PORT}/todo",
                              isolation_level="AUTOCOMMIT")  # pg8000's own unverified TLS: setup only
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE mtls"))
        admin.dispose()
        yield TlsPostgres(pki, str(client_cert), str(client_key))
    finally:
        subprocess.run([script, "clean"], env=env, check=False)


def refusal(settings: Settings) -> str:
    """The refusal's message, checked for the password in it and in its whole traceback."""
    engine = make_engine(settings)
    try:
        with pytest.raises(TLSRefused) as caught, engine.connect():
            pass
    finally:
        engine.dispose()
    whole = "".join(traceback.format_exception(caught.value))
    assert PASSWORD not in whole
    return str(caught.value)


def encrypted(engine: Engine) -> tuple[bool, str]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).one()
    return row.ssl, row.version


def test_the_engine_connects_with_verify_full_and_migrates(server: TlsPostgres, tmp_path: Path) -> None:
    settings = server.settings(tmp_path)
    assert settings.database_sslmode == "verify-full"  # the default, not chosen here
    engine = make_engine(settings)
    try:
        upgrade(engine)
        ssl_on, version = encrypted(engine)
        assert ssl_on and version in ("TLSv1.2", "TLSv1.3")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tasks")).scalar() == 0
    finally:
        engine.dispose()


def test_the_migration_command_reads_its_tls_settings_from_the_environment(
        server: TlsPostgres, tmp_path: Path) -> None:
    env = {**os.environ, "TODO_DATA_DIR": str(tmp_path), "TODO_DATABASE_URL": server.url(),
           "TODO_DATABASE_SSLMODE": "verify-full", "TODO_DATABASE_SSLROOTCERT": server.pki.ca_file}
    ok = subprocess.run([sys.executable, "-m", "todo.cli", "migrate"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    env["TODO_DATABASE_SSLROOTCERT"] = server.pki.stranger_file
    refused = subprocess.run([sys.executable, "-m", "todo.cli", "migrate"], env=env, capture_output=True, text=True)
    assert refused.returncode != 0
    assert "the server's certificate is not trusted" in refused.stderr
    assert PASSWORD not in refused.stderr + refused.stdout


def test_a_certificate_from_a_ca_not_trusted_is_refused(server: TlsPostgres, tmp_path: Path) -> None:
    message = refusal(server.settings(tmp_path, database_sslrootcert=server.pki.stranger_file))
    assert message.startswith(f"PostgreSQL at localhost:{PORT}: the server's certificate is not trusted")
    assert server.pki.stranger_file in message


def test_a_host_name_the_certificate_does_not_carry_is_refused_in_verify_full(
        server: TlsPostgres, tmp_path: Path) -> None:
    message = refusal(server.settings(tmp_path, host="127.0.0.1"))  # the certificate names localhost only
    assert "is not valid for the host name dialled" in message and "127.0.0.1" in message
    assert "TODO_DATABASE_SSLMODE=verify-full" in message


def test_verify_ca_checks_the_ca_but_not_the_host_name(server: TlsPostgres, tmp_path: Path) -> None:
    engine = make_engine(server.settings(tmp_path, host="127.0.0.1", database_sslmode="verify-ca"))
    try:
        assert encrypted(engine)[0]
    finally:
        engine.dispose()
    message = refusal(server.settings(tmp_path, host="127.0.0.1", database_sslmode="verify-ca",
                                      database_sslrootcert=server.pki.stranger_file))
    assert "not trusted" in message


def test_disable_is_refused_by_a_server_that_takes_tls_only(server: TlsPostgres, tmp_path: Path) -> None:
    message = refusal(server.settings(tmp_path, database_sslmode="disable"))
    assert message.startswith(f"PostgreSQL at localhost:{PORT} refused a connection without TLS")
    assert "TODO_DATABASE_SSLMODE=verify-full" in message


def test_require_encrypts_without_verifying(server: TlsPostgres, tmp_path: Path) -> None:
    engine = make_engine(server.settings(tmp_path, host="127.0.0.1", database_sslmode="require",
                                         database_sslrootcert=server.pki.stranger_file))
    try:
        assert encrypted(engine)[0]
    finally:
        engine.dispose()


def test_a_client_certificate_is_sent_where_the_server_asks_for_one(server: TlsPostgres, tmp_path: Path) -> None:
    message = refusal(server.settings(tmp_path, database="mtls"))
    assert "asks for a client certificate" in message and "TODO_DATABASE_SSLCERT" in message
    engine = make_engine(server.settings(tmp_path, database="mtls", database_sslcert=server.client_cert,
                                         database_sslkey=server.client_key))
    try:
        assert encrypted(engine)[0]
    finally:
        engine.dispose()


def test_a_server_without_tls_is_refused_unless_disable_is_chosen(tmp_path: Path) -> None:
    plain = os.environ.get("TODO_TEST_DATABASE_URL")  # make test's PostgreSQL: loopback, no TLS
    if not plain:
        pytest.skip("no plain PostgreSQL: set TODO_TEST_DATABASE_URL (make test does)")
    message = refusal(Settings(data_dir=tmp_path, database_url=plain))
    assert "does not accept TLS, which TODO_DATABASE_SSLMODE=verify-full requires" in message
    engine = make_engine(Settings(data_dir=tmp_path, database_url=plain, database_sslmode="disable"))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_tls_parameters_in_the_url_are_refused_for_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TODO_DATABASE_SSLMODE"):
        make_engine(Settings(data_dir=tmp_path, database_url="postgresql+pg8000://todo@db.example.com/todo"
                                                             "?sslmode=require"))
