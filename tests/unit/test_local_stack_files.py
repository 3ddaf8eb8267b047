"""dapr.yaml (for the Dapr CLI) and the stack runner describe the same apps on the same ports."""

from __future__ import annotations

from pathlib import Path

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
