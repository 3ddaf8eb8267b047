"""The tables of docs/ that the code already states: the variables (todo.settings), the routes
(todo.routes), the accepted ranges (todo.limits), the problems the edge answers (todo.edge.problems) and
the metrics (todo.metrics). ``python -m todo_dev.docs`` writes each between its markers; ``--check``
lists the stale ones, and tests/docs fails while one is stale, so a new setting, route, limit, problem
or metric cannot go undocumented.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from todo.edge.problems import REFUSALS
from todo.limits import TABLE as LIMITS
from todo.metrics import FAMILIES
from todo.routes import ROUTES
from todo.settings import variables

ROOT = Path(__file__).resolve().parents[2]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def variables_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{env}` | {_cell(default)} | {_cell(doc)} |" for env, default, doc in variables()]
    return "\n".join(rows)


def routes_table() -> str:
    rows = ["| method and path | function | what | success | needs |", "|---|---|---|---|---|"]
    for route in ROUTES:
        needs = " or ".join(f"`{r}`" for r in route.roles) if route.roles else ("a token" if route.auth else "—")
        rows.append(f"| `{route.method} {route.path}` | {route.function} | {_cell(route.summary)} | {route.status} "
                    f"| {needs} |")
    return "\n".join(rows)


def limits_table() -> str:
    rows = ["| input | accepted |", "|---|---|"]
    rows += [f"| {_cell(limit.what)} | {_cell(limit.accepted)} |" for limit in LIMITS]
    return "\n".join(rows)


def problems_table() -> str:
    rows = ["| status | title | when |", "|---|---|---|"]
    rows += [f"| {r.status} | {_cell(r.title)} | {_cell(r.description)} |"
             for r in sorted(REFUSALS, key=lambda r: r.status)]
    return "\n".join(rows)


def metrics_table() -> str:
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.kind} | {', '.join(f'`{label}`' for label in f.labels)} | {_cell(f.help)} |"
             for f in FAMILIES]
    return "\n".join(rows)


@dataclass(frozen=True)
class Table:
    name: str
    page: str  # relative to the project root
    render: Callable[[], str]
    source: str  # what to edit instead of the table

    @property
    def begin(self) -> str:
        return f"<!-- generated:{self.name} by `python -m todo_dev.docs` from {self.source}; do not edit -->"

    @property
    def end(self) -> str:
        return f"<!-- end generated:{self.name} -->"

    def current(self, root: Path = ROOT) -> str:
        """What the page holds between the markers."""
        text = (root / self.page).read_text()
        if self.begin not in text or self.end not in text:
            raise LookupError(f"{self.page} lacks the markers of the {self.name} table: {self.begin} … {self.end}")
        return text.split(self.begin, 1)[1].split(self.end, 1)[0].strip("\n")

    def write(self, root: Path = ROOT) -> bool:
        """Rewrite the table; True when it changed."""
        if self.current(root) == self.render():
            return False
        path = root / self.page
        head, rest = path.read_text().split(self.begin, 1)
        tail = rest.split(self.end, 1)[1]
        path.write_text(f"{head}{self.begin}\n{self.render()}\n{self.end}{tail}")
        return True


TABLES: tuple[Table, ...] = (
    Table("variables", "docs/configuration.md", variables_table, "shared/todo/settings.py"),
    Table("routes", "docs/api.md", routes_table, "shared/todo/routes.py"),
    Table("problems", "docs/api.md", problems_table, "shared/todo/edge/problems.py"),
    Table("limits", "docs/limits.md", limits_table, "shared/todo/limits.py"),
    Table("metrics", "docs/operations.md", metrics_table, "shared/todo/metrics.py"),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m todo_dev.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="list stale tables, change nothing (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = [t for t in TABLES if t.current() != t.render()]
    if args.check:
        for table in stale:
            print(f"stale: the {table.name} table of {table.page}")
        return 1 if stale else 0
    for table in stale:
        table.write()
        print(f"wrote the {table.name} table of {table.page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
