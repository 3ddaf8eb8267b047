"""todo_dev.image reads the Dockerfile as Docker does, so that the system tier runs what ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from todo_dev.image import ROOT, BuildContext, Builder, DockerfileError, parse


def test_the_function_image_is_the_chain_of_its_stages() -> None:
    builder = Builder(Path("/nonexistent"))
    assert [s.name for s in builder.chain("function")] == ["deps", "todo", "function-source", "function"]
    assert builder.chain("todo")[-1].name == "todo"


def test_continued_lines_and_global_args_are_read() -> None:
    args, stages = parse('ARG V=3.11\nFROM python:${V}-slim AS a\nENV A=1 \\\n    B=2\nCMD ["x"]\n')
    assert args == {"V": "3.11"}
    assert [(i.keyword, i.value) for i in stages["a"].instructions] == [("ENV", "A=1 B=2"), ("CMD", '["x"]')]


def test_a_stage_without_a_name_is_refused() -> None:
    with pytest.raises(DockerfileError, match="name"):
        parse("FROM python:3.11-slim\n")


def test_the_build_context_is_what_dockerignore_leaves() -> None:
    context = BuildContext(ROOT)
    library = {str(relative) for _, relative in context.files("shared/todo")}
    assert "runtime.py" in library and "edge/http.py" in library
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in library)
    with pytest.raises(DockerfileError):  # the tooling is not in the context: no image can hold it
        list(context.files("shared/todo_dev"))
    assert [str(r) for _, r in context.files("pyproject.toml")] == ["pyproject.toml"]


def test_an_instruction_it_cannot_carry_out_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM python:3.11-slim AS a\nVOLUME /data\n')
    (tmp_path / ".dockerignore").write_text("*\n")
    with pytest.raises(DockerfileError, match="VOLUME"):
        Builder(tmp_path / "work", tmp_path, cache=tmp_path / "cache").build("a")
