"""``todo-dev``: the development commands that are not part of the runtime (the image has none of them)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from todo.settings import ConfigError, Settings, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="todo-dev", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    stack = commands.add_parser("stack", help="run the real stack: PostgreSQL, Kafka, a daprd per function")
    stack.add_argument("--port", type=int, default=None, help="gateway port (default: $PORT or 8080)")
    stack.add_argument("--tls", action="store_true",
                       help="every connection TLS: PostgreSQL TLS-only, Kafka SASL_SSL, mail by STARTTLS "
                            "(its own stack dir, .stack/tls; todo_dev.stack_tls)")
    args = parser.parse_args(argv)
    try:
        return _stack(args)
    except ConfigError as exc:
        print(f"todo-dev: configuration error: {exc}", file=sys.stderr)
        return 2


def _stack(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from .ports import DEV
    from .stack import Stack

    settings = get_settings()
    stack_dir = Path(".stack/tls" if args.tls else ".stack").resolve()  # a TLS Kafka is formatted for it
    # The documented variable wins, as on the embedded default; else a secret kept in .stack/jwt-secret.
    secret = settings.jwt_secret or Settings(data_dir=stack_dir).hs256_secret()
    assert secret is not None
    stack = Stack.on(replace(DEV, gateway=args.port or DEV.gateway), stack_dir, secret, tls=args.tls)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        stack.up()
        print(f"real stack up on http://127.0.0.1:{stack.gateway_port}; logs: {stack.log_path}", flush=True)
        print(f"traces: Jaeger UI on {stack.jaeger_query_url}", flush=True)
        where = "$TODO_JWT_SECRET" if settings.jwt_secret else f"$(cat {stack_dir / 'jwt-secret'})"
        url = make_url(stack.database_url).render_as_string(hide_password=True)  # the TLS stack's has one
        print(f"token: TODO_JWT_SECRET={where} TODO_DATABASE_URL={url} todo token --sub dev", flush=True)
        if stack.certs is not None:
            cert, key = stack.certs.smtp_cert
            print(f"TLS on every connection; CA {stack.certs.ca_file}. Reminder mail goes by STARTTLS to "
                  f"127.0.0.1:{stack.smtp_port}: python -m aiosmtpd -n -l 127.0.0.1:{stack.smtp_port} "
                  f"--tlscert {cert} --tlskey {key}", flush=True)
        while not stopping:
            signal.pause()
    finally:
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
