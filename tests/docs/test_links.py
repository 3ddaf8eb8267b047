"""Every relative link of README.md and docs/ leads somewhere: a file or folder of the tree, and a heading
of it when the link names one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import pytest

from .markdown import PENDING, ROOT, anchors, documents, links, name, slugify

EXTERNAL = ("http://", "https://", "mailto:")


def broken(path: Path, directory: Path | None = None) -> list[str]:
    """What is wrong with the links of ``path``, read as if it lay in ``directory`` (its own by default)."""
    directory = directory or path.parent
    problems = []
    for line, target in links(path):
        if target.startswith(EXTERNAL):
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (directory / unquote(file_part)).resolve() if file_part else path
        where = f"{name(path) if path.is_relative_to(ROOT) else path.name}:{line}: {target}"
        if not resolved.is_relative_to(ROOT):
            problems.append(f"{where} leaves the project")
        elif not resolved.exists():
            if resolved.relative_to(ROOT).as_posix() not in PENDING:
                problems.append(f"{where} does not exist")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: {name(resolved)} has no heading #{fragment}")
    return problems


@pytest.mark.parametrize("path", documents(), ids=[name(p) for p in documents()])
def test_every_relative_link_points_at_something_that_exists(path: Path) -> None:
    assert broken(path) == []


def test_a_link_to_a_missing_file_or_heading_is_reported(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("[gone](nowhere.md) [heading](api.md#no-such-heading) [ok](api.md#recurring-tasks) "
                    "[pending](recurrence.md) `[code](not-a-link.md)`\n")
    problems = broken(page, ROOT / "docs")
    assert len(problems) == 2, problems
    assert "nowhere.md does not exist" in problems[0] and "no heading #no-such-heading" in problems[1]


@pytest.mark.parametrize(("title", "anchor"), [
    ("Recurring tasks", "recurring-tasks"),
    ("What the offline tests prove (`tests/deploy`, part of `make test`)",
     "what-the-offline-tests-prove-testsdeploy-part-of-make-test"),
    ("Live sync: the change feed and WebSockets (push-update)", "live-sync-the-change-feed-and-websockets-push-update"),
])
def test_headings_anchor_as_github_anchors_them(title: str, anchor: str) -> None:
    assert slugify(title) == anchor
