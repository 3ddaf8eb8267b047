"""Knative Services (every function, and the public gateway) and Kubernetes Jobs (the migration)."""

from __future__ import annotations

from dataclasses import replace

from todo.routes import HEALTH_PATH, METRICS_PATH, READY_PATH

from .model import (
    ALWAYS_ON,
    APP_PORT,
    APP_SECRET,
    DAPR_CONFIGURATION,
    DAPR_METRICS_PORT,
    DATABASE_TLS_DIR,
    DATABASE_TLS_SECRET,
    DATABASE_TLS_SETTINGS,
    FUNCTION_WORKERS,
    GATEWAY,
    GATEWAY_SIZING,
    LIBRARY_IMAGE,
    MIGRATION_JOB,
    MIN_SCALE_REASON,
    NAMESPACE,
    PART_OF,
    SIDECAR,
    Doc,
    Function,
    Project,
    Sizing,
    cluster_url,
)


def labels(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": PART_OF}


def secret_env(name: str, secret: str, key: str, optional: bool = False) -> Doc:
    ref: Doc = {"name": secret, "key": key, **({"optional": True} if optional else {})}
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def database_env() -> list[Doc]:
    """What reaches PostgreSQL: the URL, and its TLS settings where todo-secrets has them."""
    return [secret_env("TODO_DATABASE_URL", APP_SECRET, "TODO_DATABASE_URL"),
            *(secret_env(name, APP_SECRET, name, optional=True) for name in DATABASE_TLS_SETTINGS)]


DATABASE_TLS_VOLUME: Doc = {"name": "database-tls", "secret": {"secretName": DATABASE_TLS_SECRET, "optional": True}}
DATABASE_TLS_MOUNT: Doc = {"name": "database-tls", "mountPath": DATABASE_TLS_DIR, "readOnly": True}


SECURITY_CONTEXT: Doc = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# Prometheus's kubernetes-pods convention: the function's own port and path. daprd's metrics stay on
# dapr.io/metrics-port; queue-proxy's on its own ports.
SCRAPE = {"prometheus.io/scrape": "true", "prometheus.io/port": str(APP_PORT), "prometheus.io/path": METRICS_PATH}
OTEL_COLLECTOR_HTTP = f"http://otel-collector.{NAMESPACE}.svc.cluster.local:4318"


def _knative_service(name: str, component: str, *, public: bool, sizing: Sizing, container: Doc,
                     annotations: dict[str, str], volumes: list[Doc] | None = None,
                     ready_path: str = HEALTH_PATH) -> Doc:
    own = labels(name, component)
    meta_labels = dict(own) if public else {**own, "networking.knative.dev/visibility": "cluster-local"}
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
            "metadata": {"labels": own, "annotations": {**scaling, **annotations}},
            "spec": {
                "containerConcurrency": sizing.container_concurrency,
                "timeoutSeconds": sizing.timeout_seconds,
                "containers": [{
                    **container,
                    "ports": [{"name": "http1", "containerPort": APP_PORT}],
                    # No periodSeconds: Knative then probes aggressively until ready (the fastest cold start).
                    "readinessProbe": {"httpGet": {"path": ready_path}},
                    "resources": {"requests": dict(sizing.requests), "limits": dict(sizing.limits)},
                    "securityContext": SECURITY_CONTEXT,
                }],
                **({"volumes": volumes} if volumes else {}),
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
    env = database_env()
    if fn.routes or fn.websocket:  # only what checks tokens gets the key
        env.append(secret_env("TODO_JWT_SECRET", APP_SECRET, "TODO_JWT_SECRET"))
    env += [{"name": "TODO_EVENTS", "value": "dapr"}, {"name": "TODO_LOG_LEVEL", "value": "INFO"},
            # The collector the sidecars export to too (knative/dapr-configuration.yaml), over OTLP/HTTP.
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": OTEL_COLLECTOR_HTTP}]
    env += [{"name": name, "value": str(seconds)} for name, seconds in sorted((windows or {}).items())]
    if not fn.websocket:  # functions-framework's gunicorn reads it; push-update's uvicorn is one process
        env.append({"name": "WORKERS", "value": str(FUNCTION_WORKERS)})
    # A tick that works through its window is one request that long: give it time to finish.
    longest = max((windows or {}).values(), default=0)
    sizing = replace(fn.sizing, timeout_seconds=max(fn.sizing.timeout_seconds, longest + 30))
    container: Doc = {"name": "function", "image": fn.image, "env": env, "volumeMounts": [DATABASE_TLS_MOUNT]}
    if fn.websocket:  # functions-framework's server routes HTTP only: the module's ASGI app, WebSocket included
        container["command"] = ["python", "-m", "uvicorn", "main:app", "--app-dir", f"/app/functions/{fn.name}",
                                "--host", "0.0.0.0", "--port", str(APP_PORT), "--no-access-log"]  # noqa: S104
    return _knative_service(fn.name, fn.kind, public=fn.public, sizing=sizing, container=container,
                            annotations={**SCRAPE, **(dapr_annotations(fn.name, sidecar_env) if sidecar else {})},
                            volumes=[DATABASE_TLS_VOLUME], ready_path=READY_PATH)


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


def ksvc_ref(name: str) -> Doc:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": name}



def job(name: str, component: str, container: Doc, backoff: int, volumes: list[Doc] | None = None) -> Doc:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name, component)},
        "spec": {
            "backoffLimit": backoff,
            "template": {
                "metadata": {"labels": labels(name, component)},
                "spec": {
                    "restartPolicy": "Never",
                    "enableServiceLinks": False,
                    "containers": [{
                        **container,
                        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "512Mi"}},
                        "securityContext": SECURITY_CONTEXT,
                    }],
                    **({"volumes": volumes} if volumes else {}),
                },
            },
        },
    }


def migration_job() -> Doc:
    # Functions never migrate on a cold start; this runs on every deploy (skaffold deletes the finished
    # Job first) and retries while PostgreSQL is still starting.
    return job(MIGRATION_JOB, "migration", {
        "name": "migrate", "image": LIBRARY_IMAGE, "command": ["python", "-m", "todo.cli", "migrate"],
        "env": [*database_env(), {"name": "TODO_LOG_LEVEL", "value": "INFO"}],
        "volumeMounts": [DATABASE_TLS_MOUNT],  # the same TLS settings and files as every function
    }, backoff=10, volumes=[DATABASE_TLS_VOLUME])
