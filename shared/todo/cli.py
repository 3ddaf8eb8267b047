"""The ``todo`` command: serve the embedded default, migrate, mint development tokens."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from .settings import ConfigError, get_settings


def _ttl(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError("use a number of seconds or e.g. 30m, 1h, 7d")
    return int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="todo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve every function behind one port (embedded default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8080")

    commands.add_parser("migrate", help="bring the database schema up to date")

    proxy = commands.add_parser("proxy", help="the real stack's gateway: the route table over one process per function")
    proxy.add_argument("--host", default="127.0.0.1")
    proxy.add_argument("--port", type=int, default=8080)
    proxy.add_argument("--upstream", action="append", default=[], metavar="FUNCTION=URL")

    audit = commands.add_parser("audit", help="the audit trail")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    audit_commands.add_parser("verify", help="recompute the hash chain; print the result, exit 1 if broken")

    dead = commands.add_parser("dead-letters", help="the events consumers gave up on, newest first, with why "
                                                    "(a JSON object per line)")
    dead.add_argument("--limit", type=_positive, default=50, help="at most this many (default 50)")
    dead.add_argument("--consumer", default=None, help="only this consumer's, e.g. on-task-event")

    token = commands.add_parser("token", help="mint a local HS256 token")
    token.add_argument("--sub", required=True, help="the user id")
    token.add_argument("--roles", default="user", help="comma list of user, admin, auditor")
    token.add_argument("--ttl", type=_ttl, default=3600, help="lifetime, e.g. 30m, 1h, 7d (default 1h)")

    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"todo: configuration error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # e.g. todo.adapters.tls.TLSRefused: its message says what is wrong
        print(f"todo: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from .logs import configure

    settings = get_settings()
    configure(settings.log_level, function={"serve": "embedded", "proxy": "gateway"}.get(args.command,
                                                                                           f"todo {args.command}"))
    if args.command == "token":
        from .edge.auth import mint

        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        try:
            print(mint(settings, args.sub, roles, args.ttl))
        except ValueError as exc:
            print(f"todo: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "migrate":
        from .adapters.db import make_engine
        from .adapters.migrate import upgrade

        engine = make_engine(settings)
        upgrade(engine)
        engine.dispose()
        return 0
    if args.command == "serve":
        import uvicorn

        from .edge.transport import ProblemH11Protocol
        from .gateway import build_app
        from .runtime import Runtime

        port = args.port or settings.port
        app = build_app(Runtime(settings))
        uvicorn.run(app, host=args.host, port=port, log_config=None, access_log=False, http=ProblemH11Protocol)
        return 0
    if args.command == "proxy":
        import uvicorn

        from .edge.transport import ProblemH11Protocol
        from .proxy import build_proxy_app

        upstreams = dict(item.split("=", 1) for item in args.upstream)
        uvicorn.run(build_proxy_app(upstreams), host=args.host, port=args.port, log_config=None, access_log=False,
                    http=ProblemH11Protocol)
        return 0
    if args.command == "audit":
        return _audit(args)
    if args.command == "dead-letters":
        return _dead_letters(args)
    raise AssertionError(args.command)


def _audit(args: argparse.Namespace) -> int:
    import json

    from sqlalchemy.exc import SQLAlchemyError

    from .runtime import Runtime
    from .service import audit

    assert args.audit_command == "verify"
    runtime = Runtime(get_settings())
    try:
        result = audit.verify(runtime.audit_uow())
    except SQLAlchemyError as exc:  # the database is away or not migrated: say so, without a traceback
        print(f"todo: cannot read the audit trail: {type(exc).__name__}: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 2
    finally:
        runtime.close()
    print(json.dumps(result.to_json()))
    return 0 if result.ok else 1


def _dead_letters(args: argparse.Namespace) -> int:
    import json

    from .adapters.dead_letters import SqlDeadLetters
    from .runtime import Runtime

    runtime = Runtime(get_settings())
    try:
        with runtime.engine.connect() as conn:
            letters = SqlDeadLetters(conn).latest(args.limit, args.consumer)
    finally:
        runtime.close()
    for letter in letters:
        print(json.dumps(letter))  # ASCII: a NUL or a lone surrogate of the event prints as an escape
    return 0


def _positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError("a number from 1 to 10000")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
