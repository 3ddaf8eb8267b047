"""The cluster gateway serves the web client: `todo proxy` started exactly as knative/gateway.yaml runs it
(command, args and env from the manifest; only the port is this run's), in a folder laid out as the
image's `todo` stage lays /app (its COPY lines and PYTHONPATH, read from the Dockerfile), on the packages
the image installs and no others."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from todo_dev import deploy, ports

from .checks import ROOT, Manifests, container

DOCKERFILE = (ROOT / "Dockerfile").read_text()
MARKER = "/* laid out as the image lays /app */"


def stage(name: str) -> str:
    found = re.search(rf"^FROM (\S+) AS {name}$(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    assert found is not None, name
    return found.group(2)


def image_tree(app: Path) -> dict[str, str]:
    """Copy what the `todo` stage copies into ``app`` (standing for /app); the stage's ENV, rebased."""
    env: dict[str, str] = {}
    for line in (stage("deps") + stage("todo")).splitlines():
        copy = re.match(r"^COPY (\S+) (\S+)$", line)
        if copy and copy.group(1) != "pyproject.toml":
            shutil.copytree(ROOT / copy.group(1), app / copy.group(2), ignore=shutil.ignore_patterns("__pycache__"))
        setting = re.match(r"^ENV (\w+)=(\S+)$", line)
        if setting:
            env[setting.group(1)] = setting.group(2).replace("/app", str(app))
    return env


@pytest.fixture
def gateway(manifests: Manifests, tmp_path: Path) -> Iterator[str]:
    spec = container(manifests.services()[deploy.GATEWAY])
    app = tmp_path / "app"
    env = image_tree(app)
    assert "PYTHONPATH" in env, "the todo stage runs the library from its sources"
    with (app / "web" / "app.css").open("a") as css:
        css.write(MARKER)  # so the test knows the page came from this tree, not the repository
    port = ports.test_port(31)
    args = list(spec["args"])
    args[args.index("--port") + 1] = str(port)
    site = runtime_site(tmp_path / "site-packages")
    # python -S: no site-packages of this venv, only what the image's deps stage installs.
    assert spec["command"][0] == "python"
    command = [sys.executable, "-S", *spec["command"][1:]]
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{site}"
    proc_env = {"PATH": os.environ["PATH"], **env, **{e["name"]: e["value"] for e in spec.get("env", [])}}
    proc = subprocess.Popen([*command, *args], cwd=app, env=proc_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the gateway did not answer /healthz in 30 s"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_cluster_gateway_serves_the_page_and_its_assets_from_the_image_layout(gateway: str) -> None:
    page = httpx.get(gateway + "/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'name="todo-dev-sign-in" content="off"' in page.text  # the proxy never mints tokens
    css_url = re.search(r'href="(/assets/\w+/app\.css)"', page.text)
    assert css_url is not None
    css = httpx.get(gateway + css_url.group(1))
    assert css.status_code == 200 and css.headers["content-type"] == "text/css; charset=utf-8"
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.text.endswith(MARKER)
    assert httpx.post(gateway + "/dev/sign-in", json={"sub": "x"}).status_code == 404



def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def runtime_closure() -> set[str]:
    """The distributions the image's deps stage installs: [project.dependencies] of pyproject.toml (as the
    Dockerfile reads them) and their own requirements, without extras."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    seen: set[str] = set()
    pending = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = _name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            pending.extend(Requirement(r) for r in requires(requirement.name) or [])
        except PackageNotFoundError:  # a dependency of another platform, not installed here
            continue
    return seen


def runtime_site(site: Path) -> Path:
    """A folder holding only what the image installs (links into this venv): the gateway runs on it with
    ``python -S``, so an import of a dev-only package fails here as it would in the cluster."""
    from importlib.metadata import distribution, packages_distributions

    closure = runtime_closure()
    site.mkdir(parents=True)
    for module, owners in packages_distributions().items():
        if module == "todo" or not any(_name(d) in closure for d in owners):
            continue
        spec = importlib.util.find_spec(module)
        if spec is None:
            continue
        locations = list(spec.submodule_search_locations or []) or [spec.origin]
        source = Path(locations[0]) if locations[0] else None
        if source is not None and source.exists() and not (site / source.name).exists():
            (site / source.name).symlink_to(source)
    for name in closure:  # their metadata too: some read their own version at import
        info = Path(str(distribution(name)._path))  # type: ignore[attr-defined]
        if not (site / info.name).exists():
            (site / info.name).symlink_to(info)
    return site
