from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from todo.settings import ConfigError, Settings, variables


def test_hs256_secret_and_jwks_url_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        Settings.from_env({"TODO_JWT_SECRET": "s", "TODO_JWT_JWKS_URL": "https://idp.example/jwks"})


def test_a_database_url_without_key_material_is_refused() -> None:
    settings = Settings.from_env({"TODO_DATABASE_URL": "postgresql+pg8000://x@localhost/x"})
    with pytest.raises(ConfigError, match="TODO_JWT_SECRET"):
        settings.hs256_secret()


def test_embedded_default_keeps_one_generated_secret_across_restarts(tmp_path: Path) -> None:
    first = Settings.from_env({"TODO_DATA_DIR": str(tmp_path)}).hs256_secret()
    second = Settings.from_env({"TODO_DATA_DIR": str(tmp_path)}).hs256_secret()
    assert first == second and first is not None and len(first) >= 32
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("name", "value"), [("TODO_EVENTS", "kafka"), ("TODO_MAX_BODY_BYTES", "lots"),
                                             ("TODO_DATABASE_SSLMODE", "prefer"), ("TODO_SMTP_TLS", "maybe")])
def test_bad_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_every_setting_is_read_from_its_own_variable() -> None:
    rows = variables()
    assert len({name for name, _, _ in rows}) == len(rows) == len(dataclasses.fields(Settings))
    given = {"TODO_WS_ORIGINS": "https://a.example, https://b.example", "TODO_WEBHOOK_ALLOW_PRIVATE": "1",
             "TODO_OUTBOX_SWEEP_SECONDS": "0.5", "TODO_DATA_DIR": "/srv/todo", "TODO_LOG_LEVEL": "debug",
             "PORT": "9000"}
    settings = Settings.from_env(given)
    assert settings.ws_origins == ("https://a.example", "https://b.example")
    assert settings.webhook_allow_private is True and settings.outbox_sweep_seconds == 0.5
    assert (settings.data_dir, settings.log_level, settings.port) == (Path("/srv/todo"), "DEBUG", 9000)
    assert Settings.from_env({}) == Settings()  # an unset variable is the field's default, written once


@pytest.mark.parametrize(("name", "value"), [("TODO_WEBHOOK_ALLOW_PRIVATE", "yes please"),
                                             ("TODO_LOG_LEVEL", "chatty")])
def test_booleans_and_choices_are_checked(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_transport_security_is_on_unless_chosen_off() -> None:
    settings = Settings.from_env({})
    assert (settings.database_sslmode, settings.smtp_tls, settings.webhook_allow_http) == ("verify-full", "starttls",
                                                                                           False)


def test_tls_files_and_modes_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"TODO_DATABASE_SSLMODE": "verify-ca", "TODO_DATABASE_SSLROOTCERT": "/tls/ca.crt",
                                  "TODO_DATABASE_SSLCERT": "/tls/tls.crt", "TODO_DATABASE_SSLKEY": "/tls/tls.key",
                                  "TODO_SMTP_TLS": "tls", "TODO_SMTP_CA": "/tls/smtp-ca.crt",
                                  "TODO_WEBHOOK_ALLOW_HTTP": "1"})
    assert (settings.database_sslmode, settings.database_sslrootcert, settings.database_sslcert,
            settings.database_sslkey) == ("verify-ca", "/tls/ca.crt", "/tls/tls.crt", "/tls/tls.key")
    assert (settings.smtp_tls, settings.smtp_ca, settings.webhook_allow_http) == ("tls", "/tls/smtp-ca.crt", True)


def test_a_client_certificate_without_its_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="TODO_DATABASE_SSLKEY"):
        Settings.from_env({"TODO_DATABASE_SSLCERT": "/tls/tls.crt"})
