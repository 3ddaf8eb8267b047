"""dapr.yaml (for the Dapr CLI) and the stack runner describe the same apps on the same ports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from todo.routes import WS_FUNCTION
from todo_dev.stack import Stack, functions_present

ROOT = Path(__file__).resolve().parents[2]


def test_dapr_cli_run_file_matches_the_stack_runner(tmp_path: Path) -> None:
    run_file = yaml.safe_load((ROOT / "dapr.yaml").read_text())
    stack = Stack(tmp_path, "secret", base_port=18000)
    apps = {app["appID"]: app for app in run_file["apps"]}
    assert list(apps) == list(functions_present())
    for name, app in apps.items():
        ports = stack.ports(name)
        assert (app["appPort"], app["daprHTTPPort"], app["daprGRPCPort"], app["metricsPort"]) == (
            ports.app, ports.dapr_http, ports.dapr_grpc, ports.metrics)
        assert app["appDirPath"] == f"./functions/{name}"
        if name == WS_FUNCTION:  # served as its module's ASGI app
            assert app["command"][:2] == ["uvicorn", "main:app"]
        else:
            assert app["command"][app["command"].index("--target") + 1] == name.replace("-", "_")
        assert str(ports.app) in app["command"]
    assert run_file["common"]["resourcesPath"] == "./dapr-components"


def test_the_stack_passes_on_the_settings_its_runner_chose_and_keeps_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODO_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("TODO_WS_ORIGINS", "https://todo.example.com")
    monkeypatch.setenv("TODO_DATABASE_URL", "postgresql+pg8000://elsewhere/x")  # the stack's own wins
    monkeypatch.setenv("TODO_NOT_A_SETTING", "x")
    env = Stack(tmp_path, "secret").stack_env("create-task")
    assert (env["TODO_LOG_LEVEL"], env["TODO_WS_ORIGINS"]) == ("DEBUG", "https://todo.example.com")
    assert env["TODO_DATABASE_URL"].startswith("postgresql+pg8000://todo@127.0.0.1:")
    assert "TODO_NOT_A_SETTING" not in env


def test_the_local_kafka_creates_the_topics_and_partitions_the_cluster_job_does() -> None:
    """One list (Project.kafka_topics): the cluster's topics Job, the stack, and kafka.sh's own default."""
    import re
    import shlex

    from todo.service.events import TOPIC_PARTITIONS
    from todo_dev.deploy.kafka import topics_job
    from todo_dev.deploy.model import ROOT, Project

    wanted = Project().kafka_topics()
    assert ("task-events", TOPIC_PARTITIONS) in wanted
    script = (ROOT / "scripts" / "stack" / "kafka.sh").read_text()
    [default] = re.findall(r'^DEFAULT_TOPICS="([^"]*)"', script, re.MULTILINE)
    assert [(t, int(p)) for t, p in (item.split(":") for item in default.split())] == wanted
    job = topics_job(Project())["spec"]["template"]["spec"]["containers"][0]["command"][2]
    created = [(w[w.index("--topic") + 1], int(w[w.index("--partitions") + 1]))
               for w in map(shlex.split, job.splitlines()) if "--topic" in w]
    assert created == wanted


def test_each_function_runs_as_many_worker_processes_on_the_stack_as_in_its_pod(tmp_path: Path) -> None:
    """The benchmarks measure what Knative runs: functions-framework's WORKERS, one number for both."""
    from todo_dev.deploy.model import FUNCTION_WORKERS

    manifest = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]
                for d in yaml.safe_load_all((ROOT / "knative" / "functions.yaml").read_text()) if d}
    stack = Stack(tmp_path, "secret")
    for name in functions_present():
        pod = {e["name"]: e.get("value") for e in manifest[name]["env"]}
        if name == WS_FUNCTION:  # uvicorn, one process: its sockets and their fan-out live in it
            assert "WORKERS" not in pod
            continue
        assert pod["WORKERS"] == stack.app_env(name)["WORKERS"] == str(FUNCTION_WORKERS)
