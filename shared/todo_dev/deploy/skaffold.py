"""skaffold's artifacts (an image per function, and the library's) and its profiles."""

from __future__ import annotations

from collections.abc import Sequence

from .kafka import kafka_pubsub
from .model import LIBRARY_IMAGE, MIGRATION_JOB, NAMESPACE, TOPICS_JOB, Doc, Project

APP_FILES = ("knative/functions.yaml", "knative/gateway.yaml", "knative/events.yaml",
             "knative/schedules.yaml", "knative/migrate.yaml")
IN_CLUSTER_FILES = ("knative/in-cluster/secrets.yaml", "knative/in-cluster/postgres.yaml",
                    "knative/in-cluster/kafka.yaml", "knative/in-cluster/kafka-topics.yaml",
                    "knative/in-cluster/mailpit.yaml", "knative/in-cluster/jaeger.yaml")
ALERTS_FILE = "knative/alerts.yaml"  # Prometheus rules in a ConfigMap: harmless where no Prometheus mounts it
MANAGED_KAFKA_DIR = "build/knative-managed"  # written by --kafka-bootstrap … --out, never committed
MANAGED_PUBSUB = "knative/managed/pubsub-kafka-sasl.yaml"


def _artifacts(project: Project, dev: bool) -> list[Doc]:
    artifacts: list[Doc] = [{"image": LIBRARY_IMAGE, "docker": {"dockerfile": "Dockerfile", "target": "todo"}}]
    for fn in project.functions():
        artifact: Doc = {"image": fn.image, "docker": {
            "dockerfile": "Dockerfile", "target": "function-dev" if dev else "function",
            "buildArgs": {"FUNCTION": fn.name}}}
        if dev:  # the function-dev image reloads when these land in the running container
            artifact["sync"] = {"manual": [{"src": "shared/todo/**/*.py", "dest": "/app"},
                                           {"src": f"functions/{fn.name}/main.py", "dest": "/app"}]}
        artifacts.append(artifact)
    return artifacts


def _deploy(delete_jobs: Sequence[str]) -> Doc:
    return {"kubectl": {
        "defaultNamespace": NAMESPACE,  # dapr-components/ name no namespace
        "hooks": {"before": [{"host": {
            # A Job's template cannot change: the finished one goes so that this deploy's runs again.
            "command": ["kubectl", "--namespace", NAMESPACE, "delete", "job", *delete_jobs, "--ignore-not-found"],
        }}]},
    }}


def skaffold_config(project: Project) -> Doc:
    dapr = project.cluster_dapr_files()
    base = ["knative/namespace.yaml", "knative/dapr-configuration.yaml", *dapr, *APP_FILES, ALERTS_FILE]
    minikube = [base[0], *IN_CLUSTER_FILES, *base[1:]]
    pubsub_file, _ = kafka_pubsub(project)
    managed = [MANAGED_PUBSUB if p == pubsub_file else
               f"{MANAGED_KAFKA_DIR}/events.yaml" if p == "knative/events.yaml" else p for p in base]
    return {
        "apiVersion": "skaffold/v4beta14",
        "kind": "Config",
        "metadata": {"name": "todo"},
        "build": {"artifacts": _artifacts(project, dev=False), "local": {"useBuildkit": True}},
        "manifests": {"rawYaml": base},
        "deploy": _deploy([MIGRATION_JOB]),
        "profiles": [
            {"name": "minikube",
             "activation": [{"kubeContext": "minikube"}],
             "build": {"artifacts": _artifacts(project, dev=True),
                       "local": {"push": False, "useBuildkit": True}},
             "manifests": {"rawYaml": minikube},
             "deploy": _deploy([MIGRATION_JOB, TOPICS_JOB])},
            {"name": "managed-kafka",
             "manifests": {"rawYaml": managed}},
        ],
    }
