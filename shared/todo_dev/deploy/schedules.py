"""Ticks in the cluster and on the real stack: a PingSource per tick (a scaled-to-zero pod has no
sidecar to tick it), and the Dapr cron binding per tick that ticks where Knative is absent."""

from __future__ import annotations

import dataclasses
import math

from todo.routes import Tick
from todo.settings import Settings

from .knative import ksvc_ref, labels
from .model import NAMESPACE, Doc, GeneratorError, Project


def _cluster_minutes(tick: Tick) -> int:
    """The period of a tick's PingSource: its own rounded up to whole minutes (PingSource's finest),
    from an hour up to whole hours (at most 23)."""
    seconds = tick.cluster_every_seconds or tick.every_seconds
    minutes = max(1, math.ceil(seconds / 60))
    return minutes if minutes < 60 else 60 * min(23, minutes // 60)


def cluster_schedule(tick: Tick) -> str:
    """The PingSource schedule of a tick (a cron expression in minutes)."""
    minutes = _cluster_minutes(tick)
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return f"0 */{minutes // 60} * * *"


def window_variable(tick: Tick) -> str:
    """The environment variable of the setting that tells a windowed tick its period."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    if tick.window_setting not in fields:
        raise GeneratorError(f"tick {tick.name!r}: {tick.window_setting!r} is not a field of todo.settings.Settings")
    return str(fields[tick.window_setting].metadata["env"])


def tick_windows(project: Project) -> dict[str, dict[str, int]]:
    """Per function, the settings that tell it the cluster period, in seconds, of the ticks it gets."""
    found: dict[str, dict[str, int]] = {}
    for tick in project.schedules():
        target = project.tick_target(tick)
        if target is not None and tick.window_setting is not None:
            found.setdefault(target, {})[window_variable(tick)] = 60 * _cluster_minutes(tick)
    return found


def ping_sources(project: Project) -> list[Doc]:
    docs = []
    for tick in project.schedules():
        target = project.tick_target(tick)
        if target is None:
            continue
        docs.append({
            "apiVersion": "sources.knative.dev/v1",
            "kind": "PingSource",
            "metadata": {"name": tick.name, "namespace": NAMESPACE, "labels": labels(target, "schedule")},
            "spec": {"schedule": cluster_schedule(tick), "timezone": "Etc/UTC",
                     "sink": {"ref": ksvc_ref(target), "uri": tick.path}},
        })
    return docs


def _go_duration(seconds: float) -> str:
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def cron_binding(project: Project, tick: Tick) -> Doc:
    """The Dapr cron binding of a tick (dapr-components/<name>.yaml): daprd POSTs /<name> to each
    function it scopes, where Dapr runs without Knative (make run STACK=real, dapr run -f dapr.yaml)."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": tick.name},
        "spec": {"type": "bindings.cron", "version": "v1",
                 "metadata": [{"name": "schedule", "value": f"@every {_go_duration(tick.every_seconds)}"}]},
        "scopes": [f for f in tick.functions if project.present(f)],
    }
