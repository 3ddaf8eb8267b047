"""The tables of docs/ that the code states (every variable, every route) say what the code says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from todo.routes import ROUTES
from todo.settings import Settings
from todo_dev.docs import TABLES, Table, routes_table, variables_table


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_the_table_in_the_docs_is_the_one_the_code_gives(table: Table) -> None:
    assert table.current() == table.render(), (
        f"the {table.name} table of {table.page} is stale: run .venv/bin/python -m todo_dev.docs")


def test_every_setting_has_a_row_under_its_own_variable() -> None:
    rows = variables_table().splitlines()[2:]
    assert [row.split("|")[1].strip(" `") for row in rows] == [
        f.metadata["env"] for f in dataclasses.fields(Settings)]


def test_every_route_has_a_row_with_its_method_and_path() -> None:
    rows = routes_table().splitlines()[2:]
    assert [row.split("|")[1].strip(" `") for row in rows] == [f"{r.method} {r.path}" for r in ROUTES]


def test_a_stale_table_is_rewritten_between_its_markers_and_nothing_else(tmp_path: Path) -> None:
    table = Table("routes", "page.md", lambda: "| new |", "here")
    (tmp_path / "page.md").write_text(f"intro\n{table.begin}\n| old |\n{table.end}\nafter\n")
    assert table.current(tmp_path) == "| old |"
    assert table.write(tmp_path) is True and table.write(tmp_path) is False
    assert (tmp_path / "page.md").read_text() == f"intro\n{table.begin}\n| new |\n{table.end}\nafter\n"


def test_a_page_without_the_markers_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("| a table someone pasted |\n")
    with pytest.raises(LookupError, match="markers"):
        Table("routes", "page.md", lambda: "", "here").current(tmp_path)
