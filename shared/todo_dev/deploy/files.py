"""The generated files: YAML as people write it, rendered from the project, compared and written."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

import yaml

from todo.routes import Tick

from .kafka import MANAGED_PUBSUB_COMMENT, event_documents, managed_pubsub, topics_job
from .knative import function_service, gateway_service, migration_job
from .model import GENERATED_HEADER, IN_CLUSTER_KAFKA, WORKERS_REASON, Doc, Function, Kafka, Project
from .schedules import cron_binding, ping_sources, tick_windows
from .skaffold import MANAGED_PUBSUB, skaffold_config


class _Dumper(yaml.SafeDumper):
    """Block style as people write it: list items indented under their key, scripts as literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def dump(docs: Iterable[tuple[str, Doc]], header: str = GENERATED_HEADER) -> str:
    """A multi-document YAML file; each document may carry a comment above it."""
    parts = []
    for comment, doc in docs:
        lines = "".join(f"# {line}\n".replace("# \n", "#\n") for line in comment.splitlines()) if comment else ""
        parts.append(lines + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True))
    return header + "---\n" + "---\n".join(parts)


def _function_comment(fn: Function, sidecar: bool) -> str:
    what = {"http-function": "HTTP function: cluster-local, the gateway forwards its routes to it",
            "event-function": "event function: cluster-local, KafkaSources deliver to it (knative/events.yaml)",
            "websocket": "WebSocket function: public, clients connect to it directly"}[fn.kind]
    dapr = ("daprd sidecar: a Dapr component scopes it" if sidecar else
            "no daprd sidecar: no Dapr component deployed to the cluster scopes it")
    workers = "" if fn.websocket else f";\n{WORKERS_REASON}"
    return f"{fn.name}: {what};\n{dapr}{workers}."


def render(project: Project, kafka: Kafka = IN_CLUSTER_KAFKA) -> dict[str, str]:
    """Every generated file: path relative to the root → content."""
    sidecars = set(project.sidecar_functions())
    windows = tick_windows(project)
    functions = [(_function_comment(fn, fn.name in sidecars),
                  function_service(fn, fn.name in sidecars, project.sidecar_env(fn.name), windows.get(fn.name)))
                 for fn in project.functions()]
    gateway = ("The public entry: `todo proxy`, the route table of the shared library (method and path),\n"
               "forwarding to the cluster-local HTTP functions. min-scale 1: see its reason annotation.")
    events = event_documents(project, kafka)
    return {
        "knative/functions.yaml": dump(functions),
        "knative/gateway.yaml": dump([(gateway, gateway_service(project))]),
        "knative/events.yaml": dump([("", d) for d in events]),
        "knative/schedules.yaml": dump([
            ("Wakes the function even at zero scale; daprd's cron binding does the same where Knative is absent.",
             d) for d in ping_sources(project)]),
        "knative/migrate.yaml": dump([("`todo migrate`, once per deploy: functions never migrate on a cold start.",
                                       migration_job())]),
        "knative/in-cluster/kafka-topics.yaml": dump([(
            "The topics of the in-cluster Kafka (auto-creation is off): each consumed and produced topic, and\n"
            "a dead-letter topic per consumed one.", topics_job(project))]),
        MANAGED_PUBSUB: dump([(MANAGED_PUBSUB_COMMENT, managed_pubsub(project))]),
        "skaffold.yaml": dump([("", skaffold_config(project))]),
        **{f"dapr-components/{tick.name}.yaml": dump([(_cron_comment(tick), cron_binding(project, tick))])
           for tick in project.schedules()},
    }


def _cron_comment(tick: Tick) -> str:
    return textwrap.fill(
        f"The {tick.name} tick of todo.routes.TICKS: {tick.why}. daprd POSTs {tick.path} to each function it "
        "scopes. In a Knative cluster a PingSource ticks instead (knative/schedules.yaml), since a "
        "scaled-to-zero pod has no sidecar to tick it.", 104)


def stale(project: Project) -> list[str]:
    """Generated files whose committed content differs from what the generator produces."""
    return [path for path, text in render(project).items()
            if not (project.root / path).is_file() or (project.root / path).read_text() != text]


def write(files: dict[str, str], root: Path) -> list[str]:
    changed = []
    for path, text in files.items():
        target = root / path
        if target.is_file() and target.read_text() == text:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        changed.append(path)
    return changed
