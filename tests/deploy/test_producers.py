"""Every consumed topic has a producer: or the test says, by name, that it does not have one yet."""

from __future__ import annotations

import pytest

from todo.routes import SUBSCRIPTIONS
from todo_dev import deploy

from .checks import Manifests, producer_report


@pytest.mark.parametrize("topic", sorted({s.topic for s in SUBSCRIPTIONS}))
def test_the_consumed_topic_has_a_producer(topic: str, manifests: Manifests, project: deploy.Project) -> None:
    problems, pending = producer_report(project, deploy.PRODUCERS, manifests)
    assert [p for p in problems if f"topic {topic} " in p or f"produces {topic} " in p] == []
    if topic in pending:
        # Declared (PRODUCERS), not written yet: said out loud on every run, never silently passed.
        pytest.xfail(pending[topic])


def test_a_topic_whose_producers_are_not_written_yet_is_named(manifests: Manifests,
                                                              project: deploy.Project) -> None:
    producers = {**deploy.PRODUCERS, "reminders": ("on-snooze",)}
    problems, pending = producer_report(project, producers, manifests)
    assert pending == {"reminders": "reminders is consumed by audit-sink, on-reminder; its producer on-snooze "
                                    "does not exist yet, so nothing reaches it in the cluster today"}
    assert problems == []


def test_task_events_come_from_the_writing_functions(manifests: Manifests, project: deploy.Project) -> None:
    _, pending = producer_report(project, deploy.PRODUCERS, manifests)
    assert "task-events" not in pending
    assert {"create-task", "update-task"} <= set(deploy.PRODUCERS["task-events"])


def test_a_consumed_topic_nobody_produces_is_reported(manifests: Manifests, project: deploy.Project) -> None:
    producers = {k: v for k, v in deploy.PRODUCERS.items() if k != "task-events"}
    problems, _ = producer_report(project, producers, manifests)
    assert any("topic task-events is consumed by audit-sink" in p and "nobody produces it" in p for p in problems)


def test_a_producer_that_cannot_publish_is_reported(manifests: Manifests, project: deploy.Project) -> None:
    problems, _ = producer_report(project, {**deploy.PRODUCERS, "task-events": ("query-tasks",)}, manifests)
    assert "query-tasks produces task-events but no deployed pub/sub component scopes it" in problems
