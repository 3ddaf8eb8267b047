"""PingSources: a scaled-to-zero pod has no sidecar to tick it, so Knative ticks in the cluster."""

from __future__ import annotations

import math

from .knative import ksvc_ref, labels
from .model import CLUSTER_SCHEDULES, NAMESPACE, WINDOW_SETTINGS, Doc, GeneratorError, Project, Schedule


def cluster_schedule(tick: Schedule) -> str:
    """The PingSource schedule of a tick: CLUSTER_SCHEDULES, else its period rounded up to minutes."""
    if tick.name in CLUSTER_SCHEDULES:
        return CLUSTER_SCHEDULES[tick.name]
    minutes = _cluster_minutes(tick)
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return f"0 */{minutes // 60} * * *"


def _cluster_minutes(tick: Schedule) -> int:
    """The period of a tick's PingSource: its own rounded up to whole minutes (PingSource's finest),
    from an hour up to whole hours (at most 23)."""
    if tick.every_seconds is None:
        raise GeneratorError(f"the Dapr cron binding {tick.name!r} has no cluster schedule: add it to "
                             "CLUSTER_SCHEDULES in shared/todo/deploy.py")
    minutes = max(1, math.ceil(tick.every_seconds / 60))
    return minutes if minutes < 60 else 60 * min(23, minutes // 60)


def tick_windows(project: Project) -> dict[str, dict[str, int]]:
    """Per function, the settings (WINDOW_SETTINGS) that tell it the cluster period, in seconds, of
    the ticks it gets."""
    found: dict[str, dict[str, int]] = {}
    for tick in project.schedules():
        target = project.tick_target(tick)
        if target is not None and tick.name in WINDOW_SETTINGS:
            if tick.name in CLUSTER_SCHEDULES:  # a cron expression: no period to derive the window from
                raise GeneratorError(f"{tick.name!r} works through a window: schedule it by its period")
            found.setdefault(target, {})[WINDOW_SETTINGS[tick.name]] = 60 * _cluster_minutes(tick)
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
                     "sink": {"ref": ksvc_ref(target), "uri": f"/{tick.name}"}},
        })
    return docs
