"""Text that every store of ours keeps as it was written.

PostgreSQL's text types refuse the NUL character, and a lone surrogate (``\\ud800``: half of a UTF-16
pair, which a JSON string escape can produce) is no Unicode text at all: neither database driver can
encode it, nor can the audit trail's hash. A writer refuses both, so that nothing it commits is lost on
the way to the trail (issue 10, found 4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored as it is, or None."""
    if "\x00" in text:
        return "must not contain the NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be Unicode text (it holds a lone surrogate)"
    return None


def first_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string in a JSON-like value that cannot be stored: its path (``tags.2``) and why."""
    if isinstance(value, str):
        problem = unstorable(value)
        return None if problem is None else (path or "(value)", problem)
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = first_unstorable(str(key), path) or first_unstorable(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = first_unstorable(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
