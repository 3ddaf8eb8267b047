"""What the doc tests read in the Markdown files: fenced code blocks and relative links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# docs/ pages that other workstreams are writing: links to them are allowed before they exist.
PENDING = frozenset({"docs/recurrence.md", "docs/limits.md", "docs/operations.md", "docs/deployment-tls.md"})
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>.*)$")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


def documents() -> list[Path]:
    """README.md and every page of docs/, in a fixed order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Block:
    """A fenced code block: its info string split into words (```bash embedded status=412)."""

    path: Path
    line: int  # of the opening fence, 1-based
    info: tuple[str, ...]
    code: str

    @property
    def language(self) -> str:
        return self.info[0] if self.info else ""

    @property
    def embedded(self) -> bool:
        """Meant for `make run`: the doc tests run it against a fresh embedded server."""
        return "embedded" in self.info

    @property
    def not_executed(self) -> bool:
        return "not-executed" in self.info

    @property
    def statuses(self) -> frozenset[int]:
        """The 4xx/5xx answers the block sets out to show (``status=404,412``)."""
        for word in self.info:
            if word.startswith("status="):
                return frozenset(int(s) for s in word.removeprefix("status=").split(","))
        return frozenset()

    def where(self) -> str:
        return f"{name(self.path)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, body = len(opening["indent"]), []
        start = i
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        found.append(Block(path, start + 1, tuple(opening["info"].split()), "\n".join(body) + "\n"))
        i += 1
    return found


def _outside_code(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are not in a fenced code block."""
    lines, inside = [], False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not inside and FENCE.match(line):
            inside = True
        elif inside and line.strip() == "```":
            inside = False
        elif not inside:
            lines.append((number, line))
    return lines


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code (code spans included: they are not links)."""
    return [(number, m["target"]) for number, line in _outside_code(path)
            for m in LINK.finditer(INLINE_CODE.sub("", line))]


def anchors(path: Path) -> set[str]:
    """The fragment ids GitHub gives the headings of ``path``."""
    seen: dict[str, int] = {}
    for _, line in _outside_code(path):
        heading = HEADING.match(line)
        if heading is None:
            continue
        slug = slugify(heading["title"])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def slugify(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading anchors by its text
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
