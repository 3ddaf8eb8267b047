"""The one Dockerfile: slim base, dependencies cached apart from the code, non-root, functions-framework."""

from __future__ import annotations

import re

from .checks import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _stage(name: str) -> str:
    match = re.search(rf"^FROM .* AS {name}$(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    assert match is not None, name
    return match.group(1)


def test_the_base_is_a_slim_python() -> None:
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim AS deps$", DOCKERFILE, re.M)
    assert re.search(r"^ARG PYTHON_VERSION=3\.1\d$", DOCKERFILE, re.M)


def test_dependencies_are_installed_before_any_code_is_copied() -> None:
    deps = _stage("deps")
    assert "COPY pyproject.toml ./" in deps
    assert "pip install" in deps
    assert "shared/" not in deps.replace("/app/shared", "") and "functions/" not in deps


def test_the_images_run_as_a_numeric_non_root_user() -> None:
    assert "USER 10001:10001" in _stage("todo")
    assert "USER root" not in _stage("function")
    assert _stage("function-dev").rstrip().splitlines()[-2] == "USER 10001:10001"


def test_the_default_target_serves_the_function_with_functions_framework() -> None:
    last = DOCKERFILE.rstrip().split("\nFROM ")[-1]
    assert last.startswith("function-source AS function\n")
    assert "functions-framework --asgi --target" in last
    assert "tr - _" in last  # create-task → create_task, the decorated coroutine of functions/create-task/main.py


def test_the_build_context_leaves_out_the_work_tree() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything out, then only what the Dockerfile copies
    assert set(ignore) >= {"!pyproject.toml", "!shared/todo/", "!functions/"}


def test_the_gateway_image_carries_the_web_client_beside_the_library() -> None:
    # todo.edge.static reads web/ beside shared/: /app/web in the image, as in the repository.
    todo = _stage("todo")
    assert "COPY shared/todo/ shared/todo/" in todo and "COPY web/ web/" in todo
    assert "!web/" in (ROOT / ".dockerignore").read_text().splitlines()
