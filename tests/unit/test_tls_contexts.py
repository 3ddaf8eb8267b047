"""The client contexts of todo.adapters.tls: what each database mode checks, and file errors named."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from todo.adapters.tls import client_context, database_context
from todo.settings import ConfigError, Settings
from todo_dev.certs import Authority


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_bytes(Authority.new().cert_pem)
    return str(path)


@pytest.mark.parametrize(("mode", "verify", "hostname"), [
    ("require", ssl.CERT_NONE, False),
    ("verify-ca", ssl.CERT_REQUIRED, False),
    ("verify-full", ssl.CERT_REQUIRED, True),
])
def test_each_database_mode_verifies_what_libpq_does(mode: str, verify: ssl.VerifyMode, hostname: bool,
                                                      ca_file: str) -> None:
    context = database_context(Settings(database_sslmode=mode, database_sslrootcert=ca_file))
    assert context is not False
    assert (context.verify_mode, context.check_hostname) == (verify, hostname)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_disable_gives_pg8000_no_tls_at_all() -> None:
    # False, not None: pg8000 takes None as "try TLS, unverified, and fall back to clear text".
    assert database_context(Settings(database_sslmode="disable")) is False


def test_the_ca_bundle_is_the_only_trust_when_given(ca_file: str) -> None:
    context = client_context(ca_file, setting="TODO_SMTP_CA")
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("organizationName", "todo (throw-away)"),), (("commonName", "todo test CA"),))]


def test_a_missing_ca_file_is_named_with_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"TODO_DATABASE_SSLROOTCERT: no such file .*absent\.crt"):
        database_context(Settings(database_sslrootcert=str(tmp_path / "absent.crt")))


def test_a_file_without_a_certificate_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"TODO_SMTP_CA: .*junk\.crt holds no PEM certificate"):
        client_context(str(junk), setting="TODO_SMTP_CA")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="TODO_DATABASE_SSLMODE"):
        database_context(Settings(database_sslmode="prefer"))
