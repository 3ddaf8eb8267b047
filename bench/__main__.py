"""``python -m bench [p1 p2 p4 …] [--quick]``: run benchmarks beside their baselines, print a table, write
bench/results/<date>.json and a PNG of the latency distributions."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .common import RESULTS, Row, machine

MODULES = {"p1": "p1_cold_start", "p2": "p2_create_throughput", "p4": "p4_search", "p3": "p3_freshness",
           "p5": "p5_reminders", "p6": "p6_consumers", "p7": "p7_audit_chains", "p8": "p8_poison_recovery",
           "r1": "r1_recurrence", "t1": "t1_telemetry"}


def table(rows: list[Row]) -> str:
    lines = ["| row | what | measured | baseline | ratio | target | met |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        measured = ", ".join(f"{k}={v}" for k, v in r.measured.items() if not isinstance(v, list))
        baseline = ", ".join(f"{k}={v}" for k, v in r.baseline.items() if not isinstance(v, list)) or "—"
        met = "—" if r.met is None else ("yes" if r.met else "NO")
        lines.append(f"| {r.id} | {r.what} | {measured} | {baseline} | {r.ratio_text or '—'} | {r.target} | {met} |")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [r for r in rows if r.samples]
    if not groups:
        return
    cols = 2
    nrows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(12, 3.2 * nrows), squeeze=False)
    for ax, r in zip(axes.flat, groups, strict=False):
        labels = list(r.samples)
        ax.boxplot([r.samples[k] for k in labels], orientation="horizontal", showfliers=True)
        ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("ms (log)")
        ax.set_title(f"{r.id}: {r.what}", fontsize=9)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("which", nargs="*", help=f"benchmarks among {', '.join(MODULES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for development")
    args = parser.parse_args(argv)
    which = args.which or list(MODULES)
    unknown = [w for w in which if w not in MODULES]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose among {', '.join(MODULES)}")
    rows: list[Row] = []
    failed: dict[str, str] = {}
    started = time.monotonic()
    for name in which:
        module = importlib.import_module(f".{MODULES[name]}", __package__)
        print(f"== {name} ({MODULES[name]}){' --quick' if args.quick else ''}", flush=True)
        try:
            rows.extend(module.run(quick=args.quick))
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            failed[name] = f"{type(exc).__name__}: {exc}"
            print(f"!! {name} failed: {failed[name]}", file=sys.stderr, flush=True)
    print()
    print(table(rows))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps({
        "date": stamp, "quick": args.quick, "machine": machine(), "seconds": round(time.monotonic() - started),
        "rows": [{k: v for k, v in dataclasses.asdict(r).items() if k != "samples"} for r in rows],
        "failed": failed}, indent=2) + "\n")
    png = out.with_suffix(".png")
    plot(rows, png)
    print(f"\nwrote {out} and {png}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
