"""``python -m todo_dev.chaos`` (``make chaos``): the real stack on its own ports, a paced mixed load with
every fault kind, the checker; a table, and chaos/results/<UTC date-time>.json. Exits 1 when anything is
lost, duplicated, reordered or never published, or when the checker fails to find a planted defect."""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from .. import ports
from ..stack import ROOT, Stack
from .checker import Collected, check, prove
from .faults import full, short
from .load import Plan
from .run import chaos, table

RESULTS = ROOT / "chaos" / "results"
WORK = ROOT / "chaos" / ".work"
SECRET = "chaos-secret-" + "c" * 40  # a throw-away HS256 key for this stack only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m todo_dev.chaos", description=__doc__)
    parser.add_argument("--seconds", type=float, default=180.0, help="how long the load runs (default 180)")
    parser.add_argument("--users", type=int, default=20, help="users, each with a WebSocket open (default 20)")
    parser.add_argument("--rate", type=float, default=40.0, help="writes per second, all users (default 40)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--short", action="store_true", help="one fault of each kind only (as in make test)")
    parser.add_argument("--recheck", metavar="COLLECTED", help="check a run's collected.json again (no stack)")
    args = parser.parse_args(argv)
    if args.recheck:
        data = Collected(**json.loads(Path(args.recheck).read_text()))
        report = check(data)
        print(json.dumps({"report": report.to_json(), "checker_proof": prove(data, report)}, indent=1, default=str))
        return 0 if report.failures == 0 else 1
    plan = Plan(users=args.users, writes_per_second=args.rate, seconds=args.seconds, seed=args.seed)

    where = ports.chaos()
    for port in (where.postgres, where.kafka, where.base, where.gateway):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                print(f"port {port} is in use: is a benchmark or another chaos run going? (one at a time)",
                      file=sys.stderr)
                return 2
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    folder = WORK / stamp
    shutil.rmtree(folder, ignore_errors=True)
    stack = Stack.on(where, folder, SECRET)
    try:
        # Tracing is not part of what is checked: no Jaeger, so a run costs the machine less.
        stack.start_postgres()
        stack.start_kafka()
        stack.migrate()
        stack.start_functions()
        stack.start_gateway()
        outcome = chaos(stack, plan, short() if args.short else full(stack.functions))
    finally:
        stack.down(engines=False)
        stack.stop_kafka()
        stack.stop_postgres()
    print(table(outcome))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp}.json"
    path.write_text(json.dumps({"started": stamp, "commit": _commit(), **outcome.summary()}, indent=1,
                               default=str) + "\n")
    (folder / "collected.json").write_text(json.dumps(outcome.data.to_json(), default=str))
    print(f"results: {path.relative_to(ROOT)}; the collected data: {folder / 'collected.json'}; log: {stack.log_path}")
    return 0 if outcome.report.failures == 0 and outcome.proven else 1


def _commit() -> str:
    import subprocess

    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return found.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
