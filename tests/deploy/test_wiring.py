"""Cross-checks: functions, images, Dapr sidecars and scopes, Kafka delivery, schedules, secrets, skaffold.

Each check runs on the committed deployment (nothing to report) and on a copy broken on purpose (the
break is reported), so none of them passes by looking at nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from todo.routes import HEALTH_PATH, READY_PATH
from todo_dev import deploy

from .checks import (
    ROOT,
    Manifests,
    annotations,
    container,
    dapr_problems,
    database_tls_problems,
    event_problems,
    function_problems,
    migration_problems,
    scaling_problems,
    schedule_problems,
    secret_problems,
    skaffold_problems,
    visibility_problems,
)


def _has(problems: list[str], needle: str) -> bool:
    return any(needle in p for p in problems)


# -- functions and images ----------------------------------------------------------------------------------


def test_every_function_has_a_service_an_image_and_a_build(manifests: Manifests, project: deploy.Project) -> None:
    assert {fn.name for fn in project.functions()} >= {"create-task", "update-task", "query-tasks", "audit-sink"}
    assert function_problems(manifests, project) == []


def test_a_function_without_a_service_is_reported(broken: Manifests, project: deploy.Project) -> None:
    broken.files["knative/functions.yaml"] = [d for d in broken.files["knative/functions.yaml"]
                                              if d["metadata"]["name"] != "update-task"]
    assert _has(function_problems(broken, project), "update-task: no Knative Service")


def test_a_function_without_a_skaffold_artifact_is_reported(broken: Manifests, project: deploy.Project) -> None:
    artifacts = broken.skaffold()["build"]["artifacts"]
    artifacts[:] = [a for a in artifacts if a["image"] != "dev.local/audit-sink"]
    assert _has(function_problems(broken, project), "no skaffold artifact dev.local/audit-sink (default build)")


def test_an_artifact_built_for_another_function_is_reported(broken: Manifests, project: deploy.Project) -> None:
    artifact = next(a for a in broken.skaffold()["profiles"][0]["build"]["artifacts"]
                    if a["image"] == "dev.local/create-task")
    artifact["docker"]["buildArgs"]["FUNCTION"] = "update-task"
    assert _has(function_problems(broken, project), "does not build with FUNCTION=create-task")


def test_a_dockerfile_without_the_function_build_arg_is_reported(manifests: Manifests, project: deploy.Project) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text().replace("ARG FUNCTION\n", "")
    assert _has(function_problems(manifests, project, dockerfile), "Dockerfile: no ARG FUNCTION")


def test_each_function_defines_the_target_the_image_runs() -> None:
    # The image runs `functions-framework --target <name with underscores>` (Dockerfile); skaffold builds
    # one per folder of functions/.
    for fn in deploy.Project().functions():
        source = (ROOT / "functions" / fn.name / "main.py").read_text()
        assert f"async def {fn.name.replace('-', '_')}(" in source, fn.name


# -- scale, resources, probes, visibility --------------------------------------------------------------------


def test_every_service_scales_to_zero_unless_a_reason_is_written(manifests: Manifests) -> None:
    assert scaling_problems(manifests) == []
    for name, service in manifests.services().items():
        notes = annotations(service)
        if name == deploy.GATEWAY:
            assert notes["autoscaling.knative.dev/min-scale"] == "1"
            assert notes[deploy.MIN_SCALE_REASON]
        else:
            assert notes["autoscaling.knative.dev/min-scale"] == "0", name
        probe = HEALTH_PATH if name == deploy.GATEWAY else READY_PATH
        assert container(service)["readinessProbe"]["httpGet"]["path"] == probe, name


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda s: annotations(s).update({"autoscaling.knative.dev/min-scale": "2"}), "min-scale 2 without a reason"),
    (lambda s: container(s)["resources"].pop("limits"), "no memory limits"),
    (lambda s: s["spec"]["template"]["spec"].pop("timeoutSeconds"), "timeoutSeconds must be set"),
    (lambda s: annotations(s).pop("autoscaling.knative.dev/target"), "no autoscaling.knative.dev/target"),
    (lambda s: container(s)["readinessProbe"]["httpGet"].update({"path": HEALTH_PATH}),
     "no readiness probe on /readyz"),
    (lambda s: annotations(s).pop("prometheus.io/scrape"), "no scrape annotations for /metrics"),
], ids=["min-scale", "limits", "timeout", "target", "probe", "scrape"])
def test_scaling_and_resource_gaps_are_reported(broken: Manifests, mutate: Any, expected: str) -> None:
    mutate(broken.services()["query-tasks"])
    assert _has(scaling_problems(broken), expected)


def test_only_the_gateway_and_websockets_are_public(manifests: Manifests, project: deploy.Project) -> None:
    assert visibility_problems(manifests, project) == []
    public = {name for name, s in manifests.services().items()
              if "networking.knative.dev/visibility" not in s["metadata"]["labels"]}
    assert public == {deploy.GATEWAY} | {fn.name for fn in project.functions() if fn.websocket}


def test_a_public_event_function_is_reported(broken: Manifests, project: deploy.Project) -> None:
    del broken.services()["audit-sink"]["metadata"]["labels"]["networking.knative.dev/visibility"]
    assert _has(visibility_problems(broken, project), "audit-sink: must be cluster-local")


# -- Dapr: app ids, ports, scopes, the brokers secret --------------------------------------------------------


def test_dapr_app_ids_ports_and_scopes_agree(manifests: Manifests, project: deploy.Project) -> None:
    assert dapr_problems(manifests, project) == []
    assert dapr_problems(manifests, project, "managed-kafka") == []
    sidecars = {n for n, s in manifests.services().items() if annotations(s).get("dapr.io/enabled") == "true"}
    assert sidecars == set(project.sidecar_functions())
    assert {"create-task", "update-task", "audit-sink"} <= sidecars
    assert "query-tasks" not in sidecars  # it neither publishes nor subscribes: no sidecar to start


@pytest.mark.parametrize(("annotation", "value", "expected"), [
    ("dapr.io/app-port", "8000", "dapr.io/app-port 8000 is not the container port 8080"),
    ("dapr.io/app-id", "create-tasks", "dapr.io/app-id is 'create-tasks'"),
    ("dapr.io/metrics-port", "9090", "dapr.io/metrics-port 9090 clashes"),
    ("dapr.io/metrics-port", "8012", "dapr.io/metrics-port 8012 clashes"),
    ("dapr.io/config", "tood", "dapr.io/config tood names no Dapr Configuration"),
    ("dapr.io/app-prot", "8080", "unknown Dapr annotation dapr.io/app-prot"),
], ids=["app-port", "app-id", "metrics-9090", "metrics-8012", "config", "typo"])
def test_dapr_annotation_mistakes_are_reported(broken: Manifests, project: deploy.Project, annotation: str,
                                               value: str, expected: str) -> None:
    annotations(broken.services()["create-task"])[annotation] = value
    assert _has(dapr_problems(broken, project), expected)


def test_a_scoped_app_without_a_sidecar_is_reported(broken: Manifests, project: deploy.Project) -> None:
    notes = annotations(broken.services()["update-task"])
    for key in [k for k in notes if k.startswith("dapr.io/")]:
        del notes[key]
    assert _has(dapr_problems(broken, project), "component pubsub scopes update-task, which runs no Dapr sidecar")


def test_a_sidecar_no_component_scopes_is_reported(broken: Manifests, project: deploy.Project) -> None:
    annotations(broken.services()["query-tasks"]).update(deploy.dapr_annotations("query-tasks"))
    assert _has(dapr_problems(broken, project), "query-tasks: has a Dapr sidecar but no deployed Dapr component")


def test_daprd_gets_the_brokers_the_pubsub_reads_from_the_env_store(broken: Manifests,
                                                                    project: deploy.Project) -> None:
    # pubsub.yaml: brokers ← secretKeyRef KAFKA_BROKERS in envstore (secretstores.local.env), i.e. daprd's env.
    notes = annotations(broken.services()["create-task"])
    assert notes["dapr.io/env-from-secret"] == "KAFKA_BROKERS=todo-kafka:brokers"
    del notes["dapr.io/env-from-secret"]
    assert _has(dapr_problems(broken, project), "create-task: component pubsub reads KAFKA_BROKERS from the env")


# -- secrets and the migration --------------------------------------------------------------------------------


def test_every_secret_read_exists_in_the_minikube_secrets(manifests: Manifests) -> None:
    assert secret_problems(manifests) == []


def test_a_secret_key_nobody_provides_is_reported(broken: Manifests) -> None:
    env = container(broken.services()["create-task"])["env"]
    next(e for e in env if e["name"] == "TODO_JWT_SECRET")["valueFrom"]["secretKeyRef"]["key"] = "jwt"
    assert _has(secret_problems(broken), "reads todo-secrets/jwt, which knative/in-cluster/secrets.yaml")


def test_an_optional_secret_key_may_be_missing_but_not_once_it_is_required(broken: Manifests) -> None:
    env = container(broken.services()["create-task"])["env"]
    ref = next(e for e in env if e["name"] == "TODO_DATABASE_SSLROOTCERT")["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True and secret_problems(broken) == []
    ref["optional"] = False
    assert _has(secret_problems(broken), "reads todo-secrets/TODO_DATABASE_SSLROOTCERT, which knative/in-cluster")


def test_an_env_var_the_settings_do_not_read_is_reported(broken: Manifests) -> None:
    container(broken.services()["create-task"])["env"].append({"name": "TODO_EVENT", "value": "dapr"})
    assert _has(secret_problems(broken), "sets TODO_EVENT, which todo.settings does not read")


def test_every_function_and_the_migration_get_the_same_database_tls(manifests: Manifests) -> None:
    assert database_tls_problems(manifests) == []
    readers = [d for _, d in manifests.docs() if d.get("kind") in ("Service", "Job")
               and any(e["name"] == "TODO_DATABASE_URL" for e in container(d).get("env", []))]
    assert {d["kind"] for d in readers} == {"Service", "Job"} and len(readers) == len(deploy.Project().functions()) + 1


def test_a_workload_without_the_database_tls_settings_or_files_is_reported(broken: Manifests) -> None:
    job = broken.get("Job", "todo-migrate")
    container(job)["env"] = [e for e in container(job)["env"] if e["name"] != "TODO_DATABASE_SSLMODE"]
    container(broken.services()["audit-sink"])["volumeMounts"] = []
    problems = database_tls_problems(broken)
    assert _has(problems, "Job/todo-migrate: TODO_DATABASE_SSLMODE is not read from todo-secrets")
    assert _has(problems, "Service/audit-sink: todo-database-tls is not mounted at /etc/todo/database-tls")


def test_a_job_migrates_and_no_function_does(manifests: Manifests) -> None:
    assert migration_problems(manifests) == []


def test_a_function_migrating_on_start_is_reported(broken: Manifests) -> None:
    container(broken.services()["create-task"])["args"] = ["migrate"]
    assert _has(migration_problems(broken), "create-task: migrates on start")


def test_a_missing_migration_job_is_reported(broken: Manifests) -> None:
    broken.files["knative/migrate.yaml"] = []
    assert _has(migration_problems(broken), "expected one Job running `todo migrate`, found 0")


# -- events -----------------------------------------------------------------------------------------------------


def test_every_subscription_has_its_kafka_source_and_dead_letter_sink(manifests: Manifests,
                                                                      project: deploy.Project) -> None:
    assert event_problems(manifests, project) == []
    sources = {(d["spec"]["topics"][0], d["spec"]["sink"]["ref"]["name"]) for _, d in manifests.docs("KafkaSource")}
    assert {("task-events", "audit-sink"), ("reminders", "audit-sink")} <= sources


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda s: s["spec"]["sink"]["ref"].update({"name": "audit-sinc"}), "sink Service/audit-sinc is no Knative"),
    (lambda s: s["spec"]["sink"]["ref"].update({"name": "create-task"}), "sink create-task consumes no topic"),
    (lambda s: s["spec"]["sink"].update({"uri": "/"}), "sink uri '/'; event functions take /events"),
    (lambda s: s["spec"]["delivery"]["deadLetterSink"]["ref"].update({"name": "task-event-dlq"}),
     "dead-letter sink KafkaSink/task-event-dlq does not exist"),
    (lambda s: s["spec"]["delivery"]["deadLetterSink"]["ref"].update({"name": "reminders-dlq"}),
     "dead letters go to reminders.dlq, not task-events.dlq"),
    (lambda s: s["spec"].update({"initialOffset": "latest"}), "initialOffset must be earliest"),
    (lambda s: s["spec"]["delivery"].pop("retry"), "delivery needs retry"),
    (lambda s: s["spec"].update({"topics": ["task-updates"]}), "KafkaSource task-updates → audit-sink: no such"),
    (lambda s: s["spec"].update({"topics": ["reminders"]}), "reminders → audit-sink is delivered twice"),
    (lambda s: s["spec"].update({"bootstrapServers": ["elsewhere:9092"]}), "connects to other brokers"),
], ids=["sink-name", "sink-not-a-consumer", "sink-path", "dlq-name", "dlq-topic", "offset", "retry",
        "topic", "twice", "brokers"])
def test_kafka_source_mistakes_are_reported(broken: Manifests, project: deploy.Project, mutate: Any,
                                            expected: str) -> None:
    mutate(broken.get("KafkaSource", "audit-sink-task-events"))
    assert _has(event_problems(broken, project), expected)


def test_a_subscription_without_a_kafka_source_is_reported(broken: Manifests, project: deploy.Project) -> None:
    broken.files["knative/events.yaml"] = [d for d in broken.files["knative/events.yaml"]
                                           if d["metadata"]["name"] != "audit-sink-reminders"]
    problems = event_problems(broken, project)
    assert _has(problems, "subscription reminders → audit-sink: no KafkaSource")
    assert _has(problems, "Dapr Subscription audit-sink-reminders (reminders → audit-sink): no KafkaSource")


# -- schedules ----------------------------------------------------------------------------------------------------


def test_every_tick_has_a_ping_source_in_the_cluster(manifests: Manifests, project: deploy.Project) -> None:
    assert schedule_problems(manifests, project) == []
    ping = manifests.get("PingSource", "outbox-sweep")
    assert ping["spec"]["sink"] == {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                            "name": "create-task"}, "uri": "/outbox-sweep"}


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda p: p["spec"]["sink"].update({"uri": "/sweep"}), "create-task answers ticks on /outbox-sweep only"),
    (lambda p: p["spec"]["sink"]["ref"].update({"name": "create-tasks"}), "sink create-tasks is no Knative Service"),
    (lambda p: p["spec"].update({"schedule": "@every 15s"}), "is not a 5-field cron expression"),
], ids=["path", "sink", "schedule"])
def test_ping_source_mistakes_are_reported(broken: Manifests, project: deploy.Project, mutate: Any,
                                           expected: str) -> None:
    mutate(broken.get("PingSource", "outbox-sweep"))
    assert _has(schedule_problems(broken, project), expected)


def test_a_tick_without_a_ping_source_is_reported(broken: Manifests, project: deploy.Project) -> None:
    broken.files["knative/schedules.yaml"] = []
    problems = schedule_problems(broken, project)
    assert _has(problems, "tick outbox-sweep (create-task, update-task")
    assert _has(problems, "so it stops while they are scaled to zero")


# -- skaffold -----------------------------------------------------------------------------------------------------


def test_skaffold_builds_and_deploys_everything(manifests: Manifests, project: deploy.Project) -> None:
    assert skaffold_problems(manifests, project) == []


def test_skaffold_deploys_the_dapr_components_except_what_knative_replaces(manifests: Manifests) -> None:
    deployed = manifests.deployed()
    assert {"dapr-components/pubsub.yaml", "dapr-components/resiliency.yaml",
            "dapr-components/secretstore.yaml"} <= set(deployed)
    assert "dapr-components/subscriptions.yaml" not in deployed  # KafkaSources deliver
    assert "dapr-components/outbox-sweep.yaml" not in deployed  # a PingSource ticks
    assert deployed.index("knative/namespace.yaml") == 0


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda c: c["profiles"][0]["build"]["local"].update({"push": True}), "build locally without pushing"),
    (lambda c: c["profiles"][0]["build"]["artifacts"][1].pop("sync"), "does not sync the library's sources"),
    (lambda c: c["manifests"]["rawYaml"].append("dapr-components/subscriptions.yaml"),
     "deploys dapr-components/subscriptions.yaml to the cluster, where a KafkaSource delivers"),
    (lambda c: c["manifests"]["rawYaml"].remove("dapr-components/resiliency.yaml"),
     "does not deploy dapr-components/resiliency.yaml"),
    (lambda c: c["profiles"][0]["manifests"]["rawYaml"].remove("knative/in-cluster/postgres.yaml"),
     "knative/in-cluster/postgres.yaml: no skaffold profile deploys it"),
], ids=["push", "sync", "subscriptions", "resiliency", "orphan"])
def test_skaffold_mistakes_are_reported(broken: Manifests, project: deploy.Project, mutate: Any,
                                        expected: str) -> None:
    mutate(broken.skaffold())
    assert _has(skaffold_problems(broken, project), expected)
