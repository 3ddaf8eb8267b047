"""The cluster deployment, generated from the route table and the subscriptions.

``python -m todo.deploy`` (re)writes every generated file under ``knative/`` and ``skaffold.yaml``;
``--check`` only says which ones are stale (``tests/deploy`` fails on the same). What it derives:

* a Knative Service per function in ``functions/`` (HTTP functions from ``ROUTES``, event functions from
  ``SUBSCRIPTIONS``), with a Dapr sidecar when a Dapr component deployed to the cluster scopes it;
* the public gateway: ``todo proxy`` (the route table itself) forwarding to the cluster-local functions;
* a KafkaSource per subscription, a dead-letter KafkaSink per consumed topic (``<topic>.dlq``);
* a PingSource per tick (``TICKS``, and each Dapr cron binding), since a scaled-to-zero pod has no
  sidecar to tick it;
* the migration Job, the Kafka topics Job of the in-cluster Kafka, and skaffold's artifacts and profiles.

Adding a function, a route or a tick is a row in ``todo.routes`` (a newly produced topic is also a row
in ``PRODUCERS`` below; a Dapr cron binding without a tick needs its ``CLUSTER_SCHEDULES`` row), then
``python -m todo.deploy``.

``python -m todo.deploy --kafka-bootstrap HOST:PORT[,...] --kafka-auth-secret NAME --out DIR`` writes the
Kafka-facing resources (KafkaSources and KafkaSinks) for a managed Kafka with SASL over TLS into DIR
instead: the brokers of a deployment are not committed here.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .routes import HEALTH_PATH, ROUTES, SUBSCRIPTIONS, TICKS, Route, Subscription, Tick

Doc = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "todo"
PART_OF = "todo"
IMAGE_PREFIX = "dev.local/"  # Knative does not resolve dev.local tags against a registry (Minikube)
LIBRARY_IMAGE = IMAGE_PREFIX + "todo"  # the shared library and its CLI: the gateway and the migration Job
GATEWAY = "gateway"
APP_PORT = 8080
DAPR_METRICS_PORT = 9092
QUEUE_PROXY_PORTS = frozenset({8012, 8013, 8022, 9090, 9091})  # Knative's queue-proxy holds these
DAPR_CONFIGURATION = "todo"  # knative/dapr-configuration.yaml

# Secrets by name (their values are never here). todo-secrets: a key per variable, TODO_DATABASE_URL and
# TODO_JWT_SECRET. todo-kafka: brokers; on a managed Kafka also protocol, sasl.mechanism, user, password.
APP_SECRET = "todo-secrets"  # noqa: S105
KAFKA_SECRET = "todo-kafka"  # noqa: S105
# Where daprd's environment gets each variable that a component reads from the env secret store
# (dapr.io/env-from-secret); any other variable comes from todo-secrets, under its own name.
SIDECAR_SECRETS: dict[str, tuple[str, str]] = {"KAFKA_BROKERS": (KAFKA_SECRET, "brokers")}
MIGRATION_JOB = "todo-migrate"
TOPICS_JOB = "todo-kafka-topics"
KAFKA_IMAGE = "apache/kafka:4.1.0"

# Who publishes each topic (through the outbox and daprd); todo.routes says who consumes it. A consumed
# topic whose producers are all missing from functions/ is reported by tests/deploy, never hidden.
# Every task writer plans reminders in its transaction (reminder.scheduled); on-reminder's scan fires them
# (reminder.triggered) and sends the in-app message on task-updates, for push-update's WebSockets.
PRODUCERS: dict[str, tuple[str, ...]] = {
    "task-events": ("create-task", "update-task", "on-task-event"),
    "reminders": ("create-task", "update-task", "on-task-event", "on-reminder"),
    "task-updates": ("create-task", "update-task", "on-task-event", "on-reminder"),
}

# Functions that hold WebSockets: public (clients connect to them directly, the gateway proxies plain
# HTTP only) and long-lived requests.
WEBSOCKET_FUNCTIONS: tuple[str, ...] = ("push-update",)

# The cluster's schedule of a tick, where its period in TICKS does not fit or only a Dapr cron binding
# (daprd's syntax) declares it. A PingSource wakes a scaled-to-zero function, so its schedule is also the
# price of keeping that function warm: the outbox sweep only collects what a crash left behind (the relay
# publishes right after each commit), so every ten minutes is enough. Other ticks run at their period
# rounded up to whole minutes (PingSource's finest): reminder-scan every minute, the cost of reminders
# due to the minute being that on-reminder stays warm.
CLUSTER_SCHEDULES: dict[str, str] = {
    "outbox-sweep": "*/10 * * * *",
}

# Ticks that keep working until the next one comes (the reminder scan fires reminders as they fall
# due in between) are told the cluster's period through this setting of todo.settings.
WINDOW_SETTINGS: dict[str, str] = {
    "reminder-scan": "TODO_REMINDER_WINDOW_SECONDS",
}

# What a Dapr resource of dapr-components/ becomes in the cluster when Knative, not daprd, drives it.
REPLACED_IN_CLUSTER: dict[str, str] = {
    "Subscription": "a KafkaSource delivers (knative/events.yaml): it wakes a scaled-to-zero function",
    "bindings.cron": "a PingSource ticks (knative/schedules.yaml): it wakes a scaled-to-zero function",
}

GENERATED_HEADER = (
    "# Generated by `python -m todo.deploy` from shared/todo/routes.py, dapr-components/ and\n"
    "# shared/todo/deploy.py. Do not edit: change those and regenerate (tests/deploy fails while stale).\n"
)


class GeneratorError(RuntimeError):
    """The route table, the subscriptions and dapr-components/ cannot be deployed as they stand."""


@dataclass(frozen=True)
class Kafka:
    """Where the KafkaSources and KafkaSinks connect."""

    bootstrap: tuple[str, ...]
    auth_secret: str | None = None  # a Secret in KafkaSink's format: protocol, sasl.mechanism, user, password


IN_CLUSTER_KAFKA = Kafka(("kafka.todo.svc.cluster.local:9092",))


@dataclass(frozen=True)
class Sizing:
    container_concurrency: int  # hard limit per pod (0: none)
    target: int  # autoscaler's concurrency target per pod
    max_scale: int
    timeout_seconds: int
    requests: dict[str, str]
    limits: dict[str, str]


# Each HTTP function's engine pool holds 8 + 8 connections (todo.adapters.db): no more requests than that
# in one pod, and max-scale x 16 per function stays within the in-cluster PostgreSQL's max_connections.
HTTP_SIZING = Sizing(16, 10, 3, 30, {"cpu": "100m", "memory": "160Mi"}, {"cpu": "1", "memory": "384Mi"})
# KafkaSource delivers in order, one event per partition at a time: little concurrency, longer timeout.
EVENT_SIZING = Sizing(8, 4, 3, 60, {"cpu": "100m", "memory": "160Mi"}, {"cpu": "1", "memory": "384Mi"})
# An open WebSocket is an in-flight request for its whole life; Knative's maximum timeout is 600 s.
WEBSOCKET_SIZING = Sizing(0, 100, 3, 600, {"cpu": "100m", "memory": "160Mi"}, {"cpu": "1", "memory": "384Mi"})
# The gateway waits up to 60 s for a function (its HTTP client's timeout): Knative must wait longer.
GATEWAY_SIZING = Sizing(0, 100, 3, 90, {"cpu": "50m", "memory": "96Mi"}, {"cpu": "500m", "memory": "192Mi"})
SIDECAR = {"cpu-request": "50m", "memory-request": "64Mi", "cpu-limit": "500m", "memory-limit": "256Mi"}

# min-scale other than "0" needs its reason beside it (the annotation below, checked by tests/deploy).
MIN_SCALE_REASON = "todo.dev/min-scale-reason"
ALWAYS_ON: dict[str, str] = {
    GATEWAY: "the public entry: at zero, a second cold start would sit in front of every cold function; "
             "it is small and holds no connections to the database",
}


@dataclass(frozen=True)
class Function:
    name: str
    routes: tuple[Route, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    @property
    def websocket(self) -> bool:
        return self.name in WEBSOCKET_FUNCTIONS

    @property
    def kind(self) -> str:
        if self.websocket:
            return "websocket"
        return "http-function" if self.routes else "event-function"

    @property
    def public(self) -> bool:
        return self.websocket  # HTTP functions are reached through the gateway, events through Knative

    @property
    def image(self) -> str:
        return IMAGE_PREFIX + self.name

    @property
    def sizing(self) -> Sizing:
        return {"websocket": WEBSOCKET_SIZING, "http-function": HTTP_SIZING}.get(self.kind, EVENT_SIZING)


def cluster_url(service: str) -> str:
    return f"http://{service}.{NAMESPACE}.svc.cluster.local"


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def dlq_sink_name(topic: str) -> str:
    return f"{topic.replace('.', '-')}-dlq"


def source_name(sub: Subscription) -> str:
    return f"{sub.function}-{sub.topic.replace('.', '-')}"


def cluster_replacement(doc: Doc) -> str | None:
    """Why a Dapr resource of dapr-components/ is not deployed to the cluster, or None if it is."""
    if doc.get("kind") == "Component":
        return REPLACED_IN_CLUSTER.get(str(doc.get("spec", {}).get("type")))
    return REPLACED_IN_CLUSTER.get(str(doc.get("kind")))


@dataclass(frozen=True)
class Schedule:
    """A scheduled POST /<name>, given to the first of ``functions`` that exists."""

    name: str
    functions: tuple[str, ...]
    every_seconds: float | None = None  # None: only a Dapr cron binding says it (in daprd's syntax)


def load_yaml(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@dataclass
class Project:
    """What the generator reads: the tree's functions, the route table, the subscriptions, dapr-components."""

    root: Path = ROOT
    routes: tuple[Route, ...] = ROUTES
    subscriptions: tuple[Subscription, ...] = SUBSCRIPTIONS
    ticks: tuple[Tick, ...] = TICKS
    _components: list[tuple[str, list[Doc]]] | None = field(default=None, repr=False)

    def present(self, name: str) -> bool:
        return (self.root / "functions" / name / "main.py").is_file()

    def tick_target(self, tick: Schedule) -> str | None:
        """The function a tick goes to: the first it names that exists. One is enough: each does the
        same shared work (one outbox table, one reminder table)."""
        return next((f for f in tick.functions if self.present(f)), None)

    def functions(self) -> tuple[Function, ...]:
        names = [r.function for r in self.routes] + [s.function for s in self.subscriptions]
        names += list(WEBSOCKET_FUNCTIONS)
        return tuple(
            Function(name, tuple(r for r in self.routes if r.function == name),
                     tuple(s for s in self.subscriptions if s.function == name))
            for name in dict.fromkeys(names) if self.present(name))

    def http_functions(self) -> tuple[Function, ...]:
        return tuple(f for f in self.functions() if f.routes)

    def consumed(self) -> tuple[Subscription, ...]:
        return tuple(s for s in self.subscriptions if self.present(s.function))

    def topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*(s.topic for s in self.consumed()), *PRODUCERS]))

    def dapr_components(self) -> list[tuple[str, list[Doc]]]:
        """(path relative to the root, documents) of each file in dapr-components/."""
        if self._components is None:
            self._components = [(str(p.relative_to(self.root)), load_yaml(p))
                                for p in sorted((self.root / "dapr-components").glob("*.yaml"))]
        return self._components

    def cluster_dapr_files(self) -> list[str]:
        """The dapr-components/ files deployed to the cluster (the rest is replaced by Knative sources)."""
        deployed = []
        for path, docs in self.dapr_components():
            replaced = [cluster_replacement(d) is not None for d in docs]
            if any(replaced) and not all(replaced):
                raise GeneratorError(f"{path} mixes resources the cluster deploys with ones Knative replaces "
                                     f"({', '.join(REPLACED_IN_CLUSTER)}): split the file")
            if not any(replaced):
                deployed.append(path)
        return deployed

    def sidecar_functions(self) -> tuple[str, ...]:
        """Functions that a Dapr component deployed to the cluster scopes: they get a daprd sidecar."""
        scoped: list[str] = []
        cluster = set(self.cluster_dapr_files())
        for path, docs in self.dapr_components():
            if path in cluster:
                scoped += [s for d in docs if d.get("kind") == "Component" for s in d.get("scopes", [])]
        return tuple(f.name for f in self.functions() if f.name in scoped)

    def cron_bindings(self) -> list[tuple[str, tuple[str, ...]]]:
        """(name, scoped functions) of each Dapr cron binding."""
        return [(d["metadata"]["name"], tuple(d.get("scopes", [])))
                for _, docs in self.dapr_components() for d in docs
                if d.get("kind") == "Component" and d.get("spec", {}).get("type") == "bindings.cron"]

    def schedules(self) -> list[Schedule]:
        """Every scheduled POST /<name>: the route table's ticks, and the Dapr cron bindings."""
        found = {t.name: Schedule(t.name, t.functions, t.every_seconds) for t in self.ticks}
        for name, scopes in self.cron_bindings():
            if name in found:
                found[name] = replace(found[name], functions=tuple(dict.fromkeys(
                    [*found[name].functions, *scopes])))
            else:
                found[name] = Schedule(name, scopes)
        return list(found.values())

    def sidecar_env(self, function: str) -> dict[str, str]:
        """Variables daprd must have in its environment for this function: the secretKeyRefs of the
        components it loads that read the env secret store."""
        cluster = set(self.cluster_dapr_files())
        components = [d for path, docs in self.dapr_components() if path in cluster for d in docs
                      if d.get("kind") == "Component"]
        stores = {c["metadata"]["name"] for c in components if c["spec"].get("type") == "secretstores.local.env"}
        names = [m["secretKeyRef"]["name"] for c in components
                 if c.get("auth", {}).get("secretStore") in stores and function in c.get("scopes", [function])
                 for m in c["spec"].get("metadata", []) if "secretKeyRef" in m]
        return {name: "{}:{}".format(*SIDECAR_SECRETS.get(name, (APP_SECRET, name))) for name in dict.fromkeys(names)}


# -- documents ---------------------------------------------------------------------------------------


def _labels(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": PART_OF}


def _secret_env(name: str, secret: str, key: str) -> Doc:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


SECURITY_CONTEXT: Doc = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _knative_service(name: str, component: str, *, public: bool, sizing: Sizing, container: Doc,
                     annotations: dict[str, str]) -> Doc:
    labels = _labels(name, component)
    meta_labels = dict(labels) if public else {**labels, "networking.knative.dev/visibility": "cluster-local"}
    min_scale = "1" if name in ALWAYS_ON else "0"
    scaling = {
        "autoscaling.knative.dev/min-scale": min_scale,
        "autoscaling.knative.dev/max-scale": str(sizing.max_scale),
        "autoscaling.knative.dev/target": str(sizing.target),
    }
    if name in ALWAYS_ON:
        scaling[MIN_SCALE_REASON] = ALWAYS_ON[name]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": meta_labels},
        "spec": {"template": {
            "metadata": {"labels": labels, "annotations": {**scaling, **annotations}},
            "spec": {
                "containerConcurrency": sizing.container_concurrency,
                "timeoutSeconds": sizing.timeout_seconds,
                "containers": [{
                    **container,
                    "ports": [{"name": "http1", "containerPort": APP_PORT}],
                    # No periodSeconds: Knative then probes aggressively until ready (the fastest cold start).
                    "readinessProbe": {"httpGet": {"path": HEALTH_PATH}},
                    "resources": {"requests": dict(sizing.requests), "limits": dict(sizing.limits)},
                    "securityContext": SECURITY_CONTEXT,
                }],
            },
        }},
    }


def dapr_annotations(app_id: str, env_from_secret: dict[str, str] | None = None) -> dict[str, str]:
    env = ",".join(f"{k}={v}" for k, v in (env_from_secret or {}).items())
    return {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": app_id,
        "dapr.io/app-port": str(APP_PORT),
        "dapr.io/app-protocol": "http",
        "dapr.io/config": DAPR_CONFIGURATION,
        "dapr.io/enable-metrics": "true",
        "dapr.io/metrics-port": str(DAPR_METRICS_PORT),
        "dapr.io/enable-api-logging": "true",
        "dapr.io/log-as-json": "true",
        # What the components read from the env secret store (pubsub.yaml: KAFKA_BROKERS) is daprd's own
        # environment: it comes from Kubernetes Secrets.
        **({"dapr.io/env-from-secret": env} if env else {}),
        "dapr.io/graceful-shutdown-seconds": "10",
        **{f"dapr.io/sidecar-{k}": v for k, v in SIDECAR.items()},
    }


def function_service(fn: Function, sidecar: bool, sidecar_env: dict[str, str] | None = None,
                     windows: dict[str, int] | None = None) -> Doc:
    env = [_secret_env("TODO_DATABASE_URL", APP_SECRET, "TODO_DATABASE_URL")]
    if fn.routes or fn.websocket:  # only what checks tokens gets the key
        env.append(_secret_env("TODO_JWT_SECRET", APP_SECRET, "TODO_JWT_SECRET"))
    env += [{"name": "TODO_EVENTS", "value": "dapr"}, {"name": "TODO_LOG_LEVEL", "value": "INFO"}]
    env += [{"name": name, "value": str(seconds)} for name, seconds in sorted((windows or {}).items())]
    # A tick that works through its window is one request that long: give it time to finish.
    longest = max((windows or {}).values(), default=0)
    sizing = replace(fn.sizing, timeout_seconds=max(fn.sizing.timeout_seconds, longest + 30))
    container: Doc = {"name": "function", "image": fn.image, "env": env}
    if fn.websocket:  # functions-framework's server routes HTTP only: the module's ASGI app, WebSocket included
        container["command"] = ["python", "-m", "uvicorn", "main:app", "--app-dir", f"/app/functions/{fn.name}",
                                "--host", "0.0.0.0", "--port", str(APP_PORT), "--no-access-log"]  # noqa: S104
    return _knative_service(fn.name, fn.kind, public=fn.public, sizing=sizing, container=container,
                            annotations=dapr_annotations(fn.name, sidecar_env) if sidecar else {})


def gateway_upstreams(project: Project) -> dict[str, str]:
    return {fn.name: cluster_url(fn.name) for fn in project.http_functions()}


def gateway_service(project: Project) -> Doc:
    upstreams = [f"--upstream={name}={url}" for name, url in gateway_upstreams(project).items()]
    container = {
        "name": GATEWAY, "image": LIBRARY_IMAGE,
        "command": ["python", "-m", "todo.cli"],
        "args": ["proxy", "--host", "0.0.0.0", "--port", str(APP_PORT), *upstreams],  # noqa: S104
        "env": [{"name": "TODO_LOG_LEVEL", "value": "INFO"}],
    }
    return _knative_service(GATEWAY, GATEWAY, public=True, sizing=GATEWAY_SIZING, container=container,
                            annotations={})


def _ksvc_ref(name: str) -> Doc:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}


def kafka_source(sub: Subscription, kafka: Kafka) -> Doc:
    spec: Doc = {
        "bootstrapServers": list(kafka.bootstrap),
        "topics": [sub.topic],
        "consumerGroup": f"knative-{source_name(sub)}",
        "initialOffset": "earliest",
        "ordering": "ordered",  # one user's events stay in order (the partition key is the user id)
    }
    if kafka.auth_secret is not None:
        spec["net"] = _kafka_net(kafka.auth_secret)
    # 5xx and timeouts are retried about a minute (1+2+…+32 s); 400 is poison: straight to the DLQ sink.
    spec["delivery"] = {
        "retry": 6,
        "backoffPolicy": "exponential",
        "backoffDelay": "PT1S",
        "deadLetterSink": {"ref": {"apiVersion": "eventing.knative.dev/v1alpha1", "kind": "KafkaSink",
                                   "name": dlq_sink_name(sub.topic)}},
    }
    spec["sink"] = {"ref": _ksvc_ref(sub.function), "uri": sub.path}
    return {
        "apiVersion": "sources.knative.dev/v1",
        "kind": "KafkaSource",
        "metadata": {"name": source_name(sub), "namespace": NAMESPACE,
                     "labels": _labels(sub.function, "event-source")},
        "spec": spec,
    }


def _kafka_net(secret: str) -> Doc:
    def ref(key: str) -> Doc:
        return {"secretKeyRef": {"name": secret, "key": key}}

    return {"sasl": {"enable": True, "user": ref("user"), "password": ref("password"),
                     "type": ref("sasl.mechanism")},
            "tls": {"enable": True}}


def dead_letter_sink(topic: str, kafka: Kafka) -> Doc:
    spec: Doc = {
        "topic": dlq_topic(topic),
        "bootstrapServers": list(kafka.bootstrap),
        # Structured: the record value is the whole CloudEvent JSON, as in the DLQ topics daprd writes.
        "contentMode": "structured",
    }
    if kafka.auth_secret is not None:
        spec["auth"] = {"secret": {"ref": {"name": kafka.auth_secret}}}
    return {
        "apiVersion": "eventing.knative.dev/v1alpha1",
        "kind": "KafkaSink",
        "metadata": {"name": dlq_sink_name(topic), "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/component": "dead-letter", "app.kubernetes.io/part-of": PART_OF}},
        "spec": spec,
    }


def event_documents(project: Project, kafka: Kafka) -> list[Doc]:
    consumed = project.consumed()
    topics = dict.fromkeys(s.topic for s in consumed)
    return [*(kafka_source(s, kafka) for s in consumed), *(dead_letter_sink(t, kafka) for t in topics)]


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
            "metadata": {"name": tick.name, "namespace": NAMESPACE, "labels": _labels(target, "schedule")},
            "spec": {"schedule": cluster_schedule(tick), "timezone": "Etc/UTC",
                     "sink": {"ref": _ksvc_ref(target), "uri": f"/{tick.name}"}},
        })
    return docs


def _job(name: str, component: str, container: Doc, backoff: int) -> Doc:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": _labels(name, component)},
        "spec": {
            "backoffLimit": backoff,
            "template": {
                "metadata": {"labels": _labels(name, component)},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "containers": [{
                        **container,
                        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "512Mi"}},
                        "securityContext": SECURITY_CONTEXT,
                    }],
                },
            },
        },
    }


def migration_job() -> Doc:
    # Functions never migrate on a cold start; this runs on every deploy (skaffold deletes the finished
    # Job first) and retries while PostgreSQL is still starting.
    return _job(MIGRATION_JOB, "migration", {
        "name": "migrate", "image": LIBRARY_IMAGE, "command": ["python", "-m", "todo.cli", "migrate"],
        "env": [_secret_env("TODO_DATABASE_URL", APP_SECRET, "TODO_DATABASE_URL"),
                {"name": "TODO_LOG_LEVEL", "value": "INFO"}],
    }, backoff=10)


def topics_job(project: Project) -> Doc:
    wanted = [(t, 3) for t in project.topics()] + [(dlq_topic(t), 1) for t in dict.fromkeys(
        s.topic for s in project.consumed())]
    lines = ["set -e"] + [
        f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server \"$BOOTSTRAP\" --create --if-not-exists "
        f"--topic {topic} --partitions {parts} --replication-factor 1" for topic, parts in wanted]
    job = _job(TOPICS_JOB, "kafka-topics", {
        "name": "topics", "image": KAFKA_IMAGE, "command": ["sh", "-c", "\n".join(lines) + "\n"],
        "env": [_secret_env("BOOTSTRAP", KAFKA_SECRET, "brokers")],
    }, backoff=10)
    job["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        **SECURITY_CONTEXT, "runAsUser": 1000}  # the image's appuser
    return job


def kafka_pubsub(project: Project) -> tuple[str, Doc]:
    """The pubsub.kafka component of dapr-components/ and its file."""
    found = [(path, d) for path, docs in project.dapr_components() for d in docs
             if d.get("kind") == "Component" and d.get("spec", {}).get("type") == "pubsub.kafka"]
    if len(found) != 1:
        raise GeneratorError(f"expected one pubsub.kafka component in dapr-components/, found {len(found)}")
    return found[0]


def managed_pubsub(project: Project) -> Doc:
    """dapr-components/ pubsub with SASL over TLS, every secret from the todo-kafka Secret."""
    _, local = kafka_pubsub(project)

    def secret(name: str, key: str) -> Doc:
        return {"name": name, "secretKeyRef": {"name": KAFKA_SECRET, "key": key}}

    replaced = {
        "brokers": secret("brokers", "brokers"),
        "authType": {"name": "authType", "value": "password"},
        "disableTls": {"name": "disableTls", "value": "false"},
    }
    metadata = [replaced.get(m["name"], m) for m in local["spec"]["metadata"]]
    metadata += [m for name, m in replaced.items() if name not in {m["name"] for m in metadata}]
    metadata += [secret("saslUsername", "user"), secret("saslPassword", "password"),
                 {"name": "saslMechanism", "value": "SHA-512"}]
    doc: Doc = {
        "apiVersion": local["apiVersion"], "kind": "Component",
        "metadata": {"name": local["metadata"]["name"], "namespace": NAMESPACE},
        "spec": {**local["spec"], "metadata": metadata},
        "auth": {"secretStore": "kubernetes"},  # Dapr's built-in store: Secrets of the namespace
    }
    if "scopes" in local:
        doc["scopes"] = list(local["scopes"])
    return doc


MANAGED_PUBSUB_COMMENT = """\
EXAMPLE for a managed Kafka (Confluent Cloud, Amazon MSK with SCRAM, Aiven, Azure Event Hubs, OCI
Streaming …): dapr-components/pubsub.yaml authenticated with SASL over TLS. skaffold's managed-kafka
profile deploys it in place of that file (same name, which the functions publish to). Every value comes
from the Secret todo-kafka through Dapr's built-in Kubernetes secret store:
  kubectl -n todo create secret generic todo-kafka \\
    --from-literal=brokers=b-1.example.com:9096,b-2.example.com:9096 \\
    --from-literal=protocol=SASL_SSL --from-literal=sasl.mechanism=SCRAM-SHA-512 \\
    --from-literal=user=todo --from-literal=password='…'
(protocol, sasl.mechanism, user and password are the keys the KafkaSinks and KafkaSources read too.)
saslMechanism: SHA-512 here; SHA-256, or PLAINTEXT for SASL/PLAIN (Event Hubs, Confluent Cloud)."""


# -- skaffold ----------------------------------------------------------------------------------------

APP_FILES = ("knative/functions.yaml", "knative/gateway.yaml", "knative/events.yaml",
             "knative/schedules.yaml", "knative/migrate.yaml")
IN_CLUSTER_FILES = ("knative/in-cluster/secrets.yaml", "knative/in-cluster/postgres.yaml",
                    "knative/in-cluster/kafka.yaml", "knative/in-cluster/kafka-topics.yaml",
                    "knative/in-cluster/mailpit.yaml")
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
    base = ["knative/namespace.yaml", "knative/dapr-configuration.yaml", *dapr, *APP_FILES]
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


# -- files -------------------------------------------------------------------------------------------


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
    return f"{fn.name}: {what};\n{dapr}."


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
    }


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m todo.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a generated file is stale")
    parser.add_argument("--kafka-bootstrap", help="managed Kafka: comma-separated HOST:PORT list")
    parser.add_argument("--kafka-auth-secret", default=KAFKA_SECRET,
                        help=f"managed Kafka: Secret with protocol, sasl.mechanism, user, password "
                             f"(default {KAFKA_SECRET})")
    parser.add_argument("--out", type=Path, help=f"managed Kafka: output directory (e.g. {MANAGED_KAFKA_DIR})")
    args = parser.parse_args(argv)
    project = Project()
    try:
        if args.kafka_bootstrap:
            if args.out is None:
                parser.error("--kafka-bootstrap needs --out")
            kafka = Kafka(tuple(b.strip() for b in args.kafka_bootstrap.split(",") if b.strip()),
                          args.kafka_auth_secret)
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "events.yaml").write_text(dump([("", d) for d in event_documents(project, kafka)]))
            print(args.out / "events.yaml")
            return 0
        if args.check:
            for path in stale(project):
                print(f"stale: {path}")
            return 1 if stale(project) else 0
        for path in write(render(project), project.root):
            print(f"wrote {path}")
    except GeneratorError as exc:
        print(f"todo.deploy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
