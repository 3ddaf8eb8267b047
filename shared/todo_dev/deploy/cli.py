"""The command line: write the generated files, or check that none is stale."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .files import dump, render, stale, write
from .kafka import event_documents
from .model import KAFKA_SECRET, GeneratorError, Kafka, Project
from .skaffold import MANAGED_KAFKA_DIR


def main(argv: Sequence[str] | None = None) -> int:
    from todo_dev import deploy  # its docstring is the help text

    parser = argparse.ArgumentParser(prog="python -m todo_dev.deploy", description=deploy.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is stale")
    parser.add_argument("--kafka-bootstrap", help="managed Kafka: comma-separated HOST:PORT list")
    parser.add_argument("--kafka-auth-secret", default=KAFKA_SECRET,
                        help=f"managed Kafka: Secret with protocol, sasl.mechanism, user, password "
                             f"(default {KAFKA_SECRET})")
    parser.add_argument("--out", type=Path, help=f"managed Kafka: output directory (e.g. {MANAGED_KAFKA_DIR})")
    args = parser.parse_args(argv)
    project = Project()
    try:
        if args.kafka_bootstrap:
            if args.out is None:
                parser.error("--kafka-bootstrap needs --out")
            kafka = Kafka(tuple(b.strip() for b in args.kafka_bootstrap.split(",") if b.strip()),
                          args.kafka_auth_secret)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "events.yaml").write_text(dump([("", d) for d in event_documents(project, kafka)]))
            print(args.out / "events.yaml")
            return 0
        if args.check:
            for path in stale(project):
                print(f"stale: {path}")
            return 1 if stale(project) else 0
        for path in write(render(project), project.root):
            print(f"wrote {path}")
    except GeneratorError as exc:
        print(f"todo_dev.deploy: {exc}", file=sys.stderr)
        return 2
    return 0

