"""Settings: typed defaults, each overridable by one environment variable, read once.

Nothing else in the code base reads ``os.environ``; tests build their own ``Settings``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

__all__ = ["DATABASE_SSLMODES", "SMTP_TLS_MODES", "ConfigError", "Settings", "get_settings"]

# libpq's sslmode names (todo.adapters.tls); "prefer" and "allow" are left out: they fall back to clear text.
DATABASE_SSLMODES = ("disable", "require", "verify-ca", "verify-full")
SMTP_TLS_MODES = ("starttls", "tls", "none")  # STARTTLS required, implicit TLS (port 465), or clear text


class ConfigError(RuntimeError):
    """The environment describes an impossible configuration."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".data")
    database_url: str | None = None  # None: the embedded SQLite file under data_dir
    jwt_secret: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str = "todo-dev"
    jwt_audience: str = "todo"
    jwt_leeway_seconds: int = 30
    events: str = "inprocess"  # "inprocess" (embedded) or "dapr" (real stack, cluster)
    pubsub_name: str = "pubsub"
    secret_store: str | None = None  # read the database URL and JWT secret from this Dapr store
    dapr_http_port: int = 3500
    outbox_sweep_seconds: float = 5.0
    # How long one reminder-scan tick keeps firing reminders as they fall due: the tick's period (a
    # Dapr cron binding every second; a PingSource every minute in the cluster, see todo.deploy).
    reminder_window_seconds: float = 1.0
    max_body_bytes: int = 1024 * 1024
    smtp_host: str | None = None  # embedded default only; the real stack mails through Dapr's binding
    smtp_port: int = 25
    mail_from: str = "todo@localhost"
    email_binding: str = "email"
    webhook_allow_private: bool = False  # tests on loopback turn it on; never in production
    webhook_timeout_seconds: float = 5.0
    ws_origins: tuple[str, ...] = ("http://localhost:*", "http://127.0.0.1:*")  # browser Origins allowed on /ws
    log_level: str = "INFO"
    dapr_grpc_port: int = 50001
    # PostgreSQL over TLS (todo.adapters.tls), libpq's names. verify-full unless chosen otherwise:
    # disable only for a server that is reached over loopback or a private network.
    database_sslmode: str = "verify-full"
    database_sslrootcert: str | None = None  # PEM CA bundle; None: the system's trust store
    database_sslcert: str | None = None  # PEM client certificate, for a server that asks for one
    database_sslkey: str | None = None  # its unencrypted PEM key
    smtp_tls: str = "starttls"  # the embedded email channel: "none" only for a mail catcher on loopback
    smtp_ca: str | None = None  # PEM CA bundle for the SMTP server; None: the system's trust store
    webhook_allow_http: bool = False  # plain-http receivers: development only, like webhook_allow_private

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        secret = env.get("TODO_JWT_SECRET") or None
        jwks = env.get("TODO_JWT_JWKS_URL") or None
        if secret and jwks:
            raise ConfigError(
                "set either TODO_JWT_SECRET (HS256) or TODO_JWT_JWKS_URL (RS256/ES256), not both: "
                "mixing symmetric and asymmetric keys lets a public key be used as an HMAC secret"
            )
        events = env.get("TODO_EVENTS", "inprocess")
        if events not in ("inprocess", "dapr"):
            raise ConfigError(f"TODO_EVENTS must be 'inprocess' or 'dapr', got {events!r}")
        sslmode = env.get("TODO_DATABASE_SSLMODE") or "verify-full"
        if sslmode not in DATABASE_SSLMODES:
            raise ConfigError(f"TODO_DATABASE_SSLMODE must be one of {', '.join(DATABASE_SSLMODES)}, got {sslmode!r}")
        if bool(env.get("TODO_DATABASE_SSLCERT")) != bool(env.get("TODO_DATABASE_SSLKEY")):
            raise ConfigError("TODO_DATABASE_SSLCERT and TODO_DATABASE_SSLKEY go together (a client certificate "
                              "and its key)")
        smtp_tls = env.get("TODO_SMTP_TLS") or "starttls"
        if smtp_tls not in SMTP_TLS_MODES:
            raise ConfigError(f"TODO_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, got {smtp_tls!r}")
        return cls(
            data_dir=Path(env.get("TODO_DATA_DIR", ".data")),
            database_url=env.get("TODO_DATABASE_URL") or None,
            jwt_secret=secret,
            jwt_jwks_url=jwks,
            jwt_issuer=env.get("TODO_JWT_ISSUER", "todo-dev"),
            jwt_audience=env.get("TODO_JWT_AUDIENCE", "todo"),
            jwt_leeway_seconds=_int(env, "TODO_JWT_LEEWAY_SECONDS", 30),
            events=events,
            pubsub_name=env.get("TODO_PUBSUB_NAME", "pubsub"),
            secret_store=env.get("TODO_SECRET_STORE") or None,
            dapr_http_port=_int(env, "DAPR_HTTP_PORT", 3500),
            outbox_sweep_seconds=_float(env, "TODO_OUTBOX_SWEEP_SECONDS", 5.0),
            reminder_window_seconds=_float(env, "TODO_REMINDER_WINDOW_SECONDS", 1.0),
            max_body_bytes=_int(env, "TODO_MAX_BODY_BYTES", 1024 * 1024),
            smtp_host=env.get("TODO_SMTP_HOST") or None,
            smtp_port=_int(env, "TODO_SMTP_PORT", 25),
            mail_from=env.get("TODO_MAIL_FROM", "todo@localhost"),
            email_binding=env.get("TODO_EMAIL_BINDING", "email"),
            webhook_allow_private=env.get("TODO_WEBHOOK_ALLOW_PRIVATE") == "1",
            webhook_timeout_seconds=_float(env, "TODO_WEBHOOK_TIMEOUT_SECONDS", 5.0),
            ws_origins=tuple(o.strip() for o in env.get("TODO_WS_ORIGINS", "http://localhost:*,http://127.0.0.1:*")
                             .split(",") if o.strip()),
            log_level=env.get("TODO_LOG_LEVEL", "INFO").upper(),
            dapr_grpc_port=_int(env, "DAPR_GRPC_PORT", 50001),
            database_sslmode=sslmode,
            database_sslrootcert=env.get("TODO_DATABASE_SSLROOTCERT") or None,
            database_sslcert=env.get("TODO_DATABASE_SSLCERT") or None,
            database_sslkey=env.get("TODO_DATABASE_SSLKEY") or None,
            smtp_tls=smtp_tls,
            smtp_ca=env.get("TODO_SMTP_CA") or None,
            webhook_allow_http=env.get("TODO_WEBHOOK_ALLOW_HTTP") == "1",
        )

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
