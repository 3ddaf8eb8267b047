"""Settings: typed defaults, each overridable by one environment variable, read once.

Each field says its variable, its default and what it means, once: :meth:`Settings.from_env` reads the
environment from those declarations, and the table of docs/configuration.md is written from them
(todo_dev.docs; tests/docs checks it). Nothing else in the runtime reads ``os.environ``; tests build their own
``Settings``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import types
import typing
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DATABASE_SSLMODES", "SMTP_TLS_MODES", "ConfigError", "Settings", "get_settings", "variables"]

# libpq's sslmode names (todo.adapters.tls); "prefer" and "allow" are left out: they fall back to clear text.
DATABASE_SSLMODES = ("disable", "require", "verify-ca", "verify-full")
SMTP_TLS_MODES = ("starttls", "tls", "none")  # STARTTLS required, implicit TLS (port 465), or clear text


class ConfigError(RuntimeError):
    """The environment describes an impossible configuration."""


def setting(default: Any, env: str, doc: str, choices: tuple[str, ...] = ()) -> Any:
    """A field read from ``env``; ``doc`` is what the configuration table says of it."""
    return dataclasses.field(default=default, metadata={"env": env, "doc": doc, "choices": choices})


@dataclass(frozen=True)
class Settings:
    port: int = setting(8080, "PORT", "port of `make run` / `todo serve`")
    data_dir: Path = setting(Path(".data"), "TODO_DATA_DIR", "embedded SQLite file and generated dev JWT secret")
    database_url: str | None = setting(
        None, "TODO_DATABASE_URL", "e.g. `postgresql+pg8000://todo@127.0.0.1:15432/todo`; unset = embedded SQLite")
    jwt_secret: str | None = setting(
        None, "TODO_JWT_SECRET", "HS256 key (required with a database URL unless JWKS); generated into "
        "`TODO_DATA_DIR` when embedded")
    jwt_jwks_url: str | None = setting(
        None, "TODO_JWT_JWKS_URL", "RS256/ES256 keys of an IdP (Keycloak, Auth0, Entra ID); never together with "
        "the secret")
    jwt_issuer: str = setting("todo-dev", "TODO_JWT_ISSUER", "required `iss`")
    jwt_audience: str = setting("todo", "TODO_JWT_AUDIENCE", "required `aud`")
    jwt_leeway_seconds: int = setting(30, "TODO_JWT_LEEWAY_SECONDS", "clock skew allowed on `exp`/`iat`/`nbf`")
    events: str = setting("inprocess", "TODO_EVENTS", "`inprocess` (embedded) or `dapr` (publish through the "
                          "sidecar: the real stack, the cluster)", choices=("inprocess", "dapr"))
    pubsub_name: str = setting("pubsub", "TODO_PUBSUB_NAME", "Dapr pub/sub component name")
    secret_store: str | None = setting(
        None, "TODO_SECRET_STORE", "a Dapr secret store to read `TODO_DATABASE_URL` and `TODO_JWT_SECRET` from "
        "(the real stack uses `envstore`)")
    dapr_http_port: int = setting(3500, "DAPR_HTTP_PORT", "the sidecar's HTTP port (set by daprd), for the "
                                  "secret store")
    dapr_grpc_port: int = setting(50001, "DAPR_GRPC_PORT", "the sidecar's gRPC port (set by daprd)")
    # The OpenTelemetry SDK reads the other OTEL_* variables itself (protocol, headers, sampler): this one
    # only decides whether spans are exported at all, and whether the SDK is loaded.
    otel_endpoint: str | None = setting(None, "OTEL_EXPORTER_OTLP_ENDPOINT", "OTLP/HTTP collector to export spans "
                                        "to (e.g. `http://127.0.0.1:4318`); unset: no tracing, nothing loaded")
    outbox_sweep_seconds: float = setting(5.0, "TODO_OUTBOX_SWEEP_SECONDS", "how often the relay sweeps leftovers")
    # A Dapr cron binding ticks every second; a PingSource every minute in the cluster (todo_dev.deploy
    # sets 60 there).
    reminder_window_seconds: float = setting(
        1.0, "TODO_REMINDER_WINDOW_SECONDS", "how long one `reminder-scan` tick keeps firing reminders as they "
        "fall due (its period; 60 in the cluster)")
    max_body_bytes: int = setting(1024 * 1024, "TODO_MAX_BODY_BYTES", "request body limit (413 above)")
    smtp_host: str | None = setting(None, "TODO_SMTP_HOST", "reminder email on the embedded default (the real "
                                    "stack mails through Dapr's binding)")
    smtp_port: int = setting(25, "TODO_SMTP_PORT", "its port")
    mail_from: str = setting("todo@localhost", "TODO_MAIL_FROM", "the sender of reminder email")
    email_binding: str = setting("email", "TODO_EMAIL_BINDING", "Dapr SMTP binding used on the real stack and "
                                 "in clusters")
    webhook_allow_private: bool = setting(False, "TODO_WEBHOOK_ALLOW_PRIVATE", "`1` lets webhooks reach loopback/"
                                          "private addresses (tests only; never in production)")
    webhook_timeout_seconds: float = setting(5.0, "TODO_WEBHOOK_TIMEOUT_SECONDS", "per webhook attempt")
    ws_origins: tuple[str, ...] = setting(("http://localhost:*", "http://127.0.0.1:*"), "TODO_WS_ORIGINS",
                                          "browser origins allowed on `/ws` (comma list of glob patterns)")
    log_level: str = setting("INFO", "TODO_LOG_LEVEL", "JSON logs on stderr at this level",
                             choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    # PostgreSQL over TLS (todo.adapters.tls), libpq's names. verify-full unless chosen otherwise: disable
    # only for a server reached over loopback or a private network.
    database_sslmode: str = setting("verify-full", "TODO_DATABASE_SSLMODE", "TLS to PostgreSQL: `disable`, "
                                    "`require`, `verify-ca` or `verify-full`", choices=DATABASE_SSLMODES)
    database_sslrootcert: str | None = setting(None, "TODO_DATABASE_SSLROOTCERT", "PEM CA bundle for PostgreSQL; "
                                               "unset: the system's trust store")
    database_sslcert: str | None = setting(None, "TODO_DATABASE_SSLCERT", "PEM client certificate, for a server "
                                           "that asks for one (with `TODO_DATABASE_SSLKEY`)")
    database_sslkey: str | None = setting(None, "TODO_DATABASE_SSLKEY", "its unencrypted PEM key")
    smtp_tls: str = setting("starttls", "TODO_SMTP_TLS", "embedded email: `starttls` (required), `tls` (implicit, "
                            "port 465) or `none` (a mail catcher on loopback only)", choices=SMTP_TLS_MODES)
    smtp_ca: str | None = setting(None, "TODO_SMTP_CA", "PEM CA bundle for the SMTP server; unset: the system's "
                                  "trust store")
    webhook_allow_http: bool = setting(False, "TODO_WEBHOOK_ALLOW_HTTP", "`1` lets webhooks use plain http "
                                       "(development only, like `TODO_WEBHOOK_ALLOW_PRIVATE`)")

    @classmethod
    def from_env(cls, env: typing.Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = source.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(f, hints[f.name], raw)
        settings = cls(**values)
        if settings.jwt_secret and settings.jwt_jwks_url:
            raise ConfigError(
                "set either TODO_JWT_SECRET (HS256) or TODO_JWT_JWKS_URL (RS256/ES256), not both: "
                "mixing symmetric and asymmetric keys lets a public key be used as an HMAC secret"
            )
        if bool(settings.database_sslcert) != bool(settings.database_sslkey):
            raise ConfigError("TODO_DATABASE_SSLCERT and TODO_DATABASE_SSLKEY go together (a client certificate "
                              "and its key)")
        return settings

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def embedded(self) -> bool:
        return self.database_url is None and self.secret_store is None

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'todo.sqlite3').resolve()}"

    def hs256_secret(self) -> str | None:
        """The HMAC key, or None when tokens are verified against a JWKS.

        The embedded default keeps a random secret in the data directory so that a token minted by
        ``todo token`` keeps working across restarts; anywhere else the secret must be configured.
        """
        if self.jwt_jwks_url:
            return None
        if self.jwt_secret:
            return self.jwt_secret
        if not self.embedded:
            raise ConfigError("TODO_JWT_SECRET or TODO_JWT_JWKS_URL must be set with TODO_DATABASE_URL")
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process won the race; use its secret
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def _parse(f: dataclasses.Field[Any], hint: Any, raw: str) -> Any:
    """``raw`` as the field's type; :class:`ConfigError` naming the variable when it is not one."""
    name = f.metadata["env"]
    kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint) if _optional(hint) else hint
    try:
        if kind is bool:
            if raw not in ("0", "1", "true", "false"):
                raise ValueError("use 1 or 0")
            return raw in ("1", "true")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is Path:
            return Path(raw)
        if typing.get_origin(kind) is tuple:
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        value = raw.strip().upper() if f.name == "log_level" else raw
    except ValueError as exc:
        raise ConfigError(f"{name} must be {_kind_name(kind)}, got {raw!r}") from exc
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, choices))}, got {raw!r}")
    return value


def _optional(hint: Any) -> bool:
    return isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)


def _kind_name(kind: Any) -> str:
    return {int: "an integer", float: "a number", bool: "a boolean (1 or 0)"}.get(kind, "a value")


def variables() -> list[tuple[str, str, str]]:
    """(variable, default as the docs write it, meaning) of every setting, in declaration order."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            shown = f"`{','.join(default)}`"
        elif default is None:
            shown = "—"
        elif isinstance(default, bool):
            shown = "off" if not default else "on"
        else:
            shown = f"`{default}`"
        rows.append((f.metadata["env"], shown, f.metadata["doc"]))
    return rows


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
