"""TLS for what the functions connect to themselves: PostgreSQL (pg8000), the SMTP server, webhooks.

One place builds each client ``ssl.SSLContext`` from the settings, and turns a refused handshake into
a sentence that says what is wrong: the server's certificate is not signed by a CA we trust, it is not
valid for the host we dialled, or the server does not speak TLS at all. None of these sentences holds a
secret: they are made from the host, the port, the setting names and OpenSSL's verdict, never from the
database URL (whose password stays in SQLAlchemy's URL object) or a credential.

Kafka is not here: daprd and the KafkaSources hold those connections (dapr-components/, todo_dev.deploy).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import Engine

from ..settings import DATABASE_SSLMODES, ConfigError, Settings

# OpenSSL's verification codes (X509_V_ERR_*) that mean "not for this host" rather than "not trusted".
_HOST_MISMATCH = {62, 64}  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_UNTRUSTED = {2, 18, 19, 20, 21}  # unknown issuer, self-signed (leaf or in the chain), cannot verify
# libpq's TLS parameters: in a database URL they would reach pg8000 as arguments it does not take.
_URL_PARAMETERS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl", "ssl_context"})


class TLSRefused(ConnectionError):
    """A connection was refused because of its transport security; the message says why (no secrets)."""


def client_context(ca_file: str | None, *, setting: str, verify: bool = True, check_hostname: bool = True,
                   cert_file: str | None = None, key_file: str | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context trusting ``ca_file`` (PEM; None: the system's trust store, which
    ``SSL_CERT_FILE`` replaces). ``setting`` names the setting the files came from, for errors."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname by default
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = check_hostname
        try:
            if ca_file is None:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
            else:
                context.load_verify_locations(cafile=ca_file)
        except FileNotFoundError as exc:
            raise ConfigError(f"{setting}: no such file {ca_file}") from exc
        except ssl.SSLError as exc:
            raise ConfigError(f"{setting}: {ca_file} holds no PEM certificate ({exc.reason})") from exc
    if cert_file is not None:
        try:
            # An encrypted key is refused rather than prompted for on a terminal nobody watches.
            context.load_cert_chain(cert_file, key_file, password=lambda: "")
        except FileNotFoundError as exc:
            raise ConfigError(f"{setting}: no such file {exc.filename or cert_file}") from exc
        except ssl.SSLError as exc:
            raise ConfigError(f"{setting}: cannot load the client certificate {cert_file} and its key "
                              f"({exc.reason}; the key must be PEM and unencrypted)") from exc
    return context


def trust(ca_file: str | None) -> str:
    return ca_file if ca_file is not None else "the system's trust store"


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, kind):
        seen = seen.__cause__ or seen.__context__
    return seen


def certificate_refused(exc: BaseException) -> bool:
    """``exc`` is (or was caused by) a certificate we refused: trying again will not change that."""
    return _find(exc, ssl.SSLCertVerificationError) is not None


def host_mismatch(exc: BaseException) -> bool:
    found = _find(exc, ssl.SSLCertVerificationError)
    return isinstance(found, ssl.SSLCertVerificationError) and found.verify_code in _HOST_MISMATCH


def explain(exc: BaseException, peer: str, trusted: str) -> str | None:
    """Why TLS with ``peer`` failed, in a sentence; None when ``exc`` (or its causes) is not about TLS.
    ``trusted`` says which CAs were trusted (see ``trust``)."""
    found = _find(exc, ssl.SSLError)
    if isinstance(found, ssl.SSLCertVerificationError):
        code, verdict = found.verify_code, found.verify_message
        if code in _HOST_MISMATCH:
            return f"{peer}: the server's certificate is not valid for the host name dialled ({verdict})"
        if code in _UNTRUSTED:
            return f"{peer}: the server's certificate is not trusted: not signed by a CA in {trusted} ({verdict})"
        return f"{peer}: the server's certificate was refused ({verdict})"
    if isinstance(found, ssl.SSLError):
        return f"{peer}: the TLS handshake failed ({found.reason or found})"
    return None


# -- PostgreSQL -------------------------------------------------------------------------------------


def database_context(settings: Settings) -> ssl.SSLContext | Literal[False]:
    """pg8000's ``ssl_context``: False (no TLS) for ``disable`` only.

    pg8000 left to itself (``None``) asks for TLS, takes it without checking the certificate, and goes on
    in clear text when the server declines: that is libpq's "prefer", which nothing here offers.
    """
    mode = settings.database_sslmode
    if mode not in DATABASE_SSLMODES:
        raise ConfigError(f"TODO_DATABASE_SSLMODE must be one of {', '.join(DATABASE_SSLMODES)}, got {mode!r}")
    if mode == "disable":
        return False
    return client_context(settings.database_sslrootcert, setting="TODO_DATABASE_SSLROOTCERT",
                          verify=mode != "require", check_hostname=mode == "verify-full",
                          cert_file=settings.database_sslcert, key_file=settings.database_sslkey)


def database_refusal(exc: BaseException, settings: Settings, host: str, port: object) -> str | None:
    """Why PostgreSQL at ``host:port`` refused the connection for its transport security, or None."""
    peer = f"PostgreSQL at {host}:{port}"
    mode = settings.database_sslmode
    explained = explain(exc, peer, trust(settings.database_sslrootcert))
    if explained is not None:
        if mode == "verify-full" and host_mismatch(exc):
            explained += "; dial a name the certificate carries (verify-ca would check the CA only)"
        return f"{explained} [TODO_DATABASE_SSLMODE={mode}]"
    text = str(exc)
    if "Server refuses SSL" in text:  # pg8000's words when the server answers the TLS request with N
        return f"{peer} does not accept TLS, which TODO_DATABASE_SSLMODE={mode} requires"
    message = _server_message(exc) or ""
    if mode == "disable" and ("no encryption" in message or "SSL off" in message):
        return (f"{peer} refused a connection without TLS ({message}): it accepts TLS only; set "
                "TODO_DATABASE_SSLMODE=verify-full (and TODO_DATABASE_SSLROOTCERT to its CA)")
    if "client certificate" in message:
        return (f"{peer} asks for a client certificate ({message}): set TODO_DATABASE_SSLCERT and "
                "TODO_DATABASE_SSLKEY")
    return None


def _server_message(exc: BaseException) -> str | None:
    """The M field of a PostgreSQL error as pg8000 raises it (a dict of the protocol's fields)."""
    args = getattr(exc, "args", ())
    fields = args[0] if args and isinstance(args[0], dict) else None
    message = fields.get("M") if fields else None
    return message if isinstance(message, str) else None


def refusing_connect(connect: Callable[..., Any], settings: Settings) -> Callable[..., Any]:
    """``connect`` (pg8000's, through SQLAlchemy) with the TLS context given and a refusal explained."""
    context = database_context(settings)

    def tls_connect(*args: Any, **kwargs: Any) -> Any:
        kwargs["ssl_context"] = context
        try:
            return connect(*args, **kwargs)
        except Exception as exc:
            problem = database_refusal(exc, settings, kwargs.get("host", "localhost"), kwargs.get("port", 5432))
            if problem is None:
                raise
            raise TLSRefused(problem) from exc

    return tls_connect


def use_database_tls(engine: Engine, settings: Settings) -> None:
    """Every new pg8000 connection of ``engine`` gets the settings' TLS context, and a refusal its reason."""
    in_url = sorted(_URL_PARAMETERS & set(engine.url.query))
    if in_url:
        raise ConfigError(f"TODO_DATABASE_URL carries {', '.join(in_url)}: set TLS with TODO_DATABASE_SSLMODE, "
                          "TODO_DATABASE_SSLROOTCERT, TODO_DATABASE_SSLCERT and TODO_DATABASE_SSLKEY instead")
    connect = refusing_connect(engine.dialect.connect, settings)

    @event.listens_for(engine, "do_connect")
    def _do_connect(_dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        return connect(*cargs, **cparams)
