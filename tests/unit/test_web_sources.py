"""The client's own sources, read for what its Content-Security-Policy forbids or the brief rules out:
inline code, eval, HTML sinks, tokens in storage or URLs."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from todo.edge.static import WEB_DIR


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.problems.append("an inline <script>")
        if tag == "style":
            self.problems.append("a <style> element")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"a {name} attribute on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"a javascript: URL on <{tag}>")


def test_index_has_no_inline_script_style_or_handlers_the_policy_would_need_unsafe_inline_for() -> None:
    parser = _Inline()
    parser.feed((WEB_DIR / "index.html").read_text())
    assert parser.problems == []


FORBIDDEN = {
    r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write": "an HTML sink",
    r"\beval\s*\(|new\s+Function\b|setTimeout\(\s*[\"'`]": "code from a string",
    r"\blocalStorage\b": "localStorage (the token belongs in memory or sessionStorage)",
    r"[?&](?:token|access_token)=": "a token in a URL",
}


@pytest.mark.parametrize("source", sorted(p.relative_to(WEB_DIR).as_posix() for p in WEB_DIR.rglob("*.js")))
def test_client_sources_use_no_html_sinks_eval_or_stored_tokens(source: str) -> None:
    text = (WEB_DIR / source).read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    found = [what for pattern, what in FORBIDDEN.items() if re.search(pattern, code)]
    assert found == []


def test_every_module_the_client_imports_exists() -> None:
    for path in WEB_DIR.rglob("*.js"):
        for name in re.findall(r"""from\s+["'](\.[^"']+)["']""", path.read_text()):
            assert (path.parent / name).resolve().is_file(), f"{path.name} imports {name}"
