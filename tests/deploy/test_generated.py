"""The generated files are what `python -m todo_dev.deploy` writes, and a new row is a regenerate away."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from todo.routes import ROUTES, SUBSCRIPTIONS, TICKS, Route, Subscription, Tick
from todo_dev import deploy

from . import checks
from .checks import ROOT, Manifests


def test_the_committed_files_are_what_the_generator_writes(project: deploy.Project) -> None:
    assert deploy.stale(project) == [], "run `python -m todo_dev.deploy` and commit what it writes"


def test_the_check_command_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["--check"]) == 0
    assert capsys.readouterr().out == ""


def _tree(tmp_path: Path) -> Path:
    """A copy of what the generator reads and writes."""
    for name in ("functions", "dapr-components", "knative"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "skaffold.yaml", tmp_path / "skaffold.yaml")
    return tmp_path


def test_a_hand_edit_of_a_generated_file_is_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    events = root / "knative" / "events.yaml"
    events.write_text(events.read_text().replace("retry: 6", "retry: 60"))
    assert deploy.stale(deploy.Project(root)) == ["knative/events.yaml"]
    deploy.write(deploy.render(deploy.Project(root)), root)
    assert deploy.stale(deploy.Project(root)) == []


def test_a_new_function_is_a_row_in_the_table_and_a_regenerate(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "functions" / "export-tasks").mkdir()
    (root / "functions" / "export-tasks" / "main.py").write_text("")
    project = deploy.Project(
        root,
        routes=(*ROUTES, Route("GET", "/export", "export-tasks", "exportTasks", "Every task as CSV")),
        subscriptions=(*SUBSCRIPTIONS, Subscription("task-events", "export-tasks")),
    )
    assert "knative/functions.yaml" in deploy.stale(project)
    deploy.write(deploy.render(project), root)
    manifests = checks.load(root)

    export = manifests.services()["export-tasks"]
    assert export["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert manifests.get("KafkaSource", "export-tasks-task-events")["spec"]["topics"] == ["task-events"]
    assert checks.gateway_upstreams(manifests)["export-tasks"] == "http://export-tasks.todo.svc.cluster.local"
    assert "dev.local/export-tasks" in {a["image"] for a in manifests.skaffold()["build"]["artifacts"]}
    assert checks.schema_problems(manifests) == []
    assert checks.event_problems(manifests, project) == []
    assert checks.function_problems(manifests, project) == []
    assert checks.visibility_problems(manifests, project) == []


def test_the_websocket_function_is_public_and_served_as_its_asgi_app(tmp_path: Path) -> None:
    manifests = checks.load(_tree(tmp_path))
    push = manifests.services()["push-update"]
    assert "networking.knative.dev/visibility" not in push["metadata"]["labels"]  # the WebSocket is public
    assert push["spec"]["template"]["spec"]["timeoutSeconds"] == 600
    container = push["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["python", "-m", "uvicorn", "main:app"]
    assert manifests.get("KafkaSource", "push-update-task-updates")["spec"]["topics"] == ["task-updates"]
    assert manifests.get("KafkaSink", "task-updates-dlq")["spec"]["topic"] == "task-updates.dlq"


def test_a_hand_written_cron_binding_is_refused(tmp_path: Path) -> None:
    # A tick is declared once, in todo.routes.TICKS; its cron binding, PingSource and routes follow.
    root = _tree(tmp_path)
    (root / "dapr-components" / "weekly-digest.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: weekly-digest\nspec:\n"
        "  type: bindings.cron\n  version: v1\n  metadata:\n    - name: schedule\n      value: '@every 168h'\n"
        "scopes:\n  - audit-sink\n")
    with pytest.raises(deploy.GeneratorError, match=r"'weekly-digest' is not a tick: declare it in todo\.routes"):
        deploy.render(deploy.Project(root))


def test_a_tick_of_the_route_table_becomes_a_ping_source_on_the_minute(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    project = deploy.Project(root, ticks=(*TICKS, Tick("tidy-up", ("query-tasks",), 1.0),
                                          Tick("report", ("audit-sink",), 900.0)))
    pings = {d["metadata"]["name"]: d["spec"] for d in deploy.ping_sources(project)}
    assert pings["tidy-up"]["schedule"] == "* * * * *"  # PingSource's finest: once a minute
    assert pings["tidy-up"]["sink"]["uri"] == "/tidy-up"
    assert pings["report"]["schedule"] == "*/15 * * * *"
    assert pings["outbox-sweep"]["schedule"] == "*/10 * * * *"  # its cluster period, ten minutes
    crons = deploy.render(project)
    assert "'@every 900s'" in crons["dapr-components/report.yaml"]  # its Dapr cron binding, generated
    assert "- audit-sink" in crons["dapr-components/report.yaml"]


def test_a_dapr_file_mixing_deployed_and_replaced_resources_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    pubsub = root / "dapr-components" / "pubsub.yaml"
    pubsub.write_text(pubsub.read_text() + "---\n" + (root / "dapr-components" / "subscriptions.yaml").read_text())
    with pytest.raises(deploy.GeneratorError, match=r"pubsub\.yaml mixes"):
        deploy.render(deploy.Project(root))


def test_managed_kafka_sources_and_sinks_use_sasl_over_tls(tmp_path: Path) -> None:
    out = tmp_path / "managed"
    assert deploy.main(["--kafka-bootstrap", "b-1.example.com:9096, b-2.example.com:9096", "--out", str(out)]) == 0
    docs = deploy.load_yaml(out / "events.yaml")
    manifests = Manifests({"build/knative-managed/events.yaml": docs, **{
        k: v for k, v in checks.load().files.items() if k != "knative/events.yaml"}})
    assert checks.schema_problems(manifests) == []
    assert checks.event_problems(manifests, deploy.Project()) == []
    for _, source in manifests.docs("KafkaSource"):
        spec = source["spec"]
        assert spec["bootstrapServers"] == ["b-1.example.com:9096", "b-2.example.com:9096"]
        # TLS verified against the brokers' CA, from the same Secret as the SCRAM credentials.
        assert spec["net"]["tls"] == {"enable": True, "caCert": {"secretKeyRef": {"name": "todo-kafka",
                                                                                  "key": "ca.crt"}}}
        assert spec["net"]["sasl"]["enable"] is True
        assert {spec["net"]["sasl"][k]["secretKeyRef"]["key"] for k in ("user", "password", "type")} == {
            "user", "password", "sasl.mechanism"}
    for _, sink in manifests.docs("KafkaSink"):
        assert sink["spec"]["auth"] == {"secret": {"ref": {"name": "todo-kafka"}}}
    # The managed-kafka profile deploys exactly that file in place of the in-cluster one.
    assert "build/knative-managed/events.yaml" in checks.load().deployed("managed-kafka")
    assert "knative/events.yaml" not in checks.load().deployed("managed-kafka")
