"""Every document validates against its upstream schema, with unknown fields rejected."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from .checks import KUBERNETES_VERSION, SHARED, Manifests, crd_schemas, schema_problems


def test_the_upstream_schemas_are_beside_the_project() -> None:
    for part in ("crds/knative-serving", "crds/knative-eventing", "crds/knative-kafka", "crds/dapr",
                 "dapr-metadata", "schemas/skaffold-v4beta14.json"):
        assert (SHARED / part).exists(), f"{SHARED / part} is missing: ../shared holds the reference schemas"


def test_every_document_in_knative_dapr_components_and_skaffold_validates(manifests: Manifests) -> None:
    assert schema_problems(manifests) == []


def test_every_file_of_the_deployment_is_checked(manifests: Manifests) -> None:
    assert "skaffold.yaml" in manifests.files
    assert any(p.startswith("dapr-components/") for p in manifests.files)
    kinds = {d["kind"] for _, d in manifests.docs()}
    assert {"Service", "KafkaSource", "KafkaSink", "PingSource", "Component", "Subscription", "Resiliency",
            "Configuration", "Job", "StatefulSet", "Secret", "Namespace"} <= kinds


def test_the_crds_come_from_shared_and_cover_the_kinds_used() -> None:
    schemas = crd_schemas()
    for key in [("serving.knative.dev/v1", "Service"), ("sources.knative.dev/v1", "KafkaSource"),
                ("eventing.knative.dev/v1alpha1", "KafkaSink"), ("sources.knative.dev/v1", "PingSource"),
                ("dapr.io/v1alpha1", "Component"), ("dapr.io/v2alpha1", "Subscription")]:
        assert key in schemas


def test_built_in_kinds_validate_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_: Any, **__: Any) -> None:
        raise AssertionError("kubernetes-validate tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "b"}]}}}}
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def _set(kind: str, name: str, *path: str | int, value: Any = "x") -> Callable[[Manifests], None]:
    def mutate(m: Manifests) -> None:
        node = m.get(kind, name)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _skaffold_docker(m: Manifests) -> None:
    m.skaffold()["build"]["artifacts"][1]["docker"]["dockerFile"] = "Dockerfile"


MISSPELT = [
    ("Knative Service", _set("Service", "create-task", "spec", "template", "spec", "containerConcurency", value=4),
     "'containerConcurency' was unexpected"),
    ("Knative container",
     _set("Service", "audit-sink", "spec", "template", "spec", "containers", 0, "imagePullPolicyy"),
     "'imagePullPolicyy' was unexpected"),
    ("KafkaSource delivery",
     _set("KafkaSource", "audit-sink-task-events", "spec", "delivery", "deadLetterSinc", value={}),
     "'deadLetterSinc' was unexpected"),
    ("KafkaSink", _set("KafkaSink", "task-events-dlq", "spec", "topik"), "'topik' was unexpected"),
    ("PingSource", _set("PingSource", "outbox-sweep", "spec", "shedule"), "'shedule' was unexpected"),
    ("metadata of a CRD kind", _set("KafkaSource", "audit-sink-reminders", "metadata", "lables", value={}),
     "'lables' was unexpected"),
    ("Dapr Component", _set("Component", "outbox-sweep", "scope", value=[]), "'scope' was unexpected"),
    ("Dapr Subscription", _set("Subscription", "audit-sink-reminders", "spec", "deadLetterTopik"),
     "'deadLetterTopik' was unexpected"),
    ("Dapr Resiliency", _set("Resiliency", "todo", "spec", "policy", value={}), "'policy' was unexpected"),
    ("built-in Job", _set("Job", "todo-migrate", "spec", "template", "spec", "restartPolcy"),
     "'restartPolcy' was unexpected"),
    ("built-in StatefulSet", _set("StatefulSet", "kafka", "spec", "replica", value=1), "'replica' was unexpected"),
    ("skaffold.yaml", _skaffold_docker, "'dockerFile' was unexpected"),
    ("a wrong type", _set("Service", "gateway", "spec", "template", "spec", "timeoutSeconds", value="ninety"),
     "'ninety' is not of type 'integer'"),
]


@pytest.mark.parametrize(("what", "mutate", "expected"), MISSPELT, ids=[m[0] for m in MISSPELT])
def test_a_misspelt_field_fails_validation(broken: Manifests, what: str, mutate: Callable[[Manifests], None],
                                           expected: str) -> None:
    mutate(broken)
    problems = schema_problems(broken)
    assert any(expected in p for p in problems), problems


def test_a_kind_without_any_schema_is_reported_not_skipped(broken: Manifests) -> None:
    broken.files["knative/extra.yaml"] = [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                           "metadata": {"name": "todo"}}]
    assert any("no schema for gateway.networking.k8s.io/v1 HTTPRoute" in p for p in schema_problems(broken))


def test_fields_kubernetes_preserves_stay_open(broken: Manifests) -> None:
    service = broken.get("Service", "create-task")
    service["spec"]["template"]["metadata"]["annotations"]["example.com/anything"] = "yes"
    broken.get("Component", "outbox-sweep")["spec"]["metadata"][0]["value"] = {"nested": ["any", 1]}
    assert schema_problems(broken) == []
