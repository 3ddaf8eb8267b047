"""How the local stack starts a function, the gateway and the migration: two ways, one interface.

* :class:`FromSources` (``make run STACK=real``): the development virtualenv and the sources in the
  work tree, so an edit is live at the next restart.
* :class:`AsShipped` (the system tests): the images as the Dockerfile builds them (todo_dev.image),
  each process started with the image's own command line, or the container command of its
  generated manifest where Kubernetes would use that (push-update, the gateway, the migration Job).
  A missing runtime dependency, a module the image lacks or a wrong command line fails there as it
  would in the cluster.

The stack gives its own variables (ports, brokers, the secret store's name); a launcher adds what its
way of running needs (the image's ENV, or the developer's environment).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from todo.routes import WS_FUNCTION

from .image import Builder, Image

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


class Launcher(Protocol):
    def function(self, function: str, port: int, env: dict[str, str]) -> Launch: ...
    def gateway(self, port: int, upstreams: dict[str, str], env: dict[str, str]) -> Launch: ...
    def migrate(self, env: dict[str, str]) -> Launch: ...


def _developer_env(env: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("TODO_", "DAPR_"))}
    return {**inherited, **env}


class FromSources:
    """The development virtualenv's interpreter on the work tree's sources."""

    def function(self, function: str, port: int, env: dict[str, str]) -> Launch:
        folder = ROOT / "functions" / function
        if function == WS_FUNCTION:  # its module's own ASGI app: the WebSocket beside the HTTP target
            argv = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(folder), "--host", "127.0.0.1",
                    "--port", str(port), "--no-access-log"]
        else:
            argv = [sys.executable, "-m", "functions_framework", "--target", function.replace("-", "_"),
                    "--source", str(folder / "main.py"), "--asgi", "--host", "127.0.0.1", "--port", str(port)]
        return Launch(argv, _developer_env(env), ROOT)

    def gateway(self, port: int, upstreams: dict[str, str], env: dict[str, str]) -> Launch:
        argv = [sys.executable, "-m", "todo.cli", "proxy", "--port", str(port),
                *(f"--upstream={name}={url}" for name, url in upstreams.items())]
        return Launch(argv, _developer_env(env), ROOT)

    def migrate(self, env: dict[str, str]) -> Launch:
        return Launch([sys.executable, "-m", "todo.cli", "migrate"], _developer_env(env), ROOT)


def _container(path: Path, name: str) -> dict[str, Any]:
    """The first container of the workload called ``name`` in a generated manifest."""
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("metadata", {}).get("name") == name:
            spec = doc["spec"]["template"]["spec"]
            return dict(spec["containers"][0])
    raise LookupError(f"no workload {name!r} in {path}")


def _with_port(argv: list[str], port: int) -> list[str]:
    """The container listens on the pod's port; here on the stack's."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--port":
            out[i + 1] = str(port)
    return out


@dataclass
class AsShipped:
    """Each process from its image: built once per stack into ``work``."""

    work: Path
    root: Path = ROOT
    images: dict[str, Image] = field(default_factory=dict)

    def image(self, name: str) -> Image:
        if name not in self.images:
            builder = Builder(self.work, self.root)
            if name == "todo":
                self.images[name] = builder.build("todo")
            else:
                self.images[name] = builder.build("function", {"FUNCTION": name}, name=name)
        return self.images[name]

    def function(self, function: str, port: int, env: dict[str, str]) -> Launch:
        image = self.image(function)
        container = _container(self.root / "knative" / "functions.yaml", function)
        argv = _with_port(image.command(container.get("command"), container.get("args")), port)
        return Launch(argv, image.environment({**env, "PORT": str(port)}), image.cwd)

    def gateway(self, port: int, upstreams: dict[str, str], env: dict[str, str]) -> Launch:
        image = self.image("todo")
        container = _container(self.root / "knative" / "gateway.yaml", "gateway")
        argv = []
        for arg in _with_port(image.command(container.get("command"), container.get("args")), port):
            name = arg.removeprefix("--upstream=").split("=", 1)[0]
            argv.append(f"--upstream={name}={upstreams[name]}" if arg.startswith("--upstream=") else arg)
        return Launch(argv, image.environment(env), image.cwd)

    def migrate(self, env: dict[str, str]) -> Launch:
        image = self.image("todo")
        container = _container(self.root / "knative" / "migrate.yaml", "todo-migrate")
        return Launch(image.command(container.get("command"), container.get("args")), image.environment(env),
                      image.cwd)
