"""Offline checks of the cluster deployment: each returns the problems it finds, as readable lines.

The tests run them on the committed files (no problem allowed) and on broken in-memory copies (the
problem must be reported), so every check is shown to bite.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, latest_version
from starlette.testclient import TestClient

from todo.proxy import build_proxy_app
from todo.routes import HEALTH_PATH, METRICS_PATH, READY_PATH, Route, ticks_of
from todo_dev import deploy

Doc = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
KUBERNETES_VERSION = latest_version()
KNATIVE_SERVICE = "serving.knative.dev/v1"

# Every sidecar annotation the Dapr 1.18 injector reads (pkg/injector/patcher/sidecar.go); a typo in an
# annotation is silently ignored by the injector, so it is caught here.
DAPR_ANNOTATIONS = frozenset(f"dapr.io/{name}" for name in [
    "enabled", "app-id", "app-port", "app-protocol", "app-ssl", "app-max-concurrency", "config", "log-level",
    "log-as-json", "enable-api-logging", "enable-metrics", "metrics-port", "enable-debug", "debug-port",
    "enable-profiling", "env", "env-from-secret", "grpc-port", "internal-grpc-port", "sidecar-cpu-request",
    "sidecar-cpu-limit", "sidecar-memory-request", "sidecar-memory-limit", "sidecar-listen-addresses",
    "sidecar-image", "sidecar-liveness-probe-delay-seconds", "sidecar-liveness-probe-timeout-seconds",
    "sidecar-liveness-probe-period-seconds", "sidecar-liveness-probe-threshold",
    "sidecar-readiness-probe-delay-seconds", "sidecar-readiness-probe-timeout-seconds",
    "sidecar-readiness-probe-period-seconds", "sidecar-readiness-probe-threshold", "http-max-request-size",
    "max-body-size", "http-read-buffer-size", "read-buffer-size", "graceful-shutdown-seconds",
    "block-shutdown-duration", "unix-domain-socket-path", "volume-mounts", "volume-mounts-rw",
    "disable-builtin-k8s-secret-store", "enable-app-health-check", "app-health-check-path",
    "app-health-probe-interval", "app-health-probe-timeout", "app-health-threshold", "placement-host-address",
    "api-token-secret", "app-token-secret", "app-channel-address", "sidecar-seccomp-profile-type",
    "sidecar-svc-annotations",
])
DAPR_PORTS = frozenset({3500, 3501, 50001, 50002})  # daprd's HTTP, health, gRPC and internal gRPC ports


# -- the manifests --------------------------------------------------------------------------------------


@dataclass
class Manifests:
    """Every YAML document the deployment is made of, by file (relative to the root)."""

    files: dict[str, list[Doc]]

    def copy(self) -> Manifests:
        return Manifests(copy.deepcopy(self.files))

    def docs(self, kind: str | None = None, group: str | None = None) -> Iterator[tuple[str, Doc]]:
        for path, docs in self.files.items():
            for doc in docs:
                if kind is not None and doc.get("kind") != kind:
                    continue
                if group is not None and str(doc.get("apiVersion", "")).split("/")[0] != group:
                    continue
                yield path, doc

    def get(self, kind: str, name: str, group: str | None = None) -> Doc:
        for _, doc in self.docs(kind, group):
            if doc.get("metadata", {}).get("name") == name:
                return doc
        raise KeyError(f"{kind}/{name}")

    def services(self) -> dict[str, Doc]:
        """Knative Services by name."""
        return {d["metadata"]["name"]: d for _, d in self.docs("Service", "serving.knative.dev")}

    def skaffold(self) -> Doc:
        return self.files["skaffold.yaml"][0]

    def deployed(self, profile: str | None = None) -> list[str]:
        """The files a skaffold profile deploys (None: the default)."""
        config = self.skaffold()
        for p in config.get("profiles", []):
            if p["name"] == profile and "manifests" in p:
                return list(p["manifests"]["rawYaml"])
        return list(config["manifests"]["rawYaml"])

    def deployed_components(self, profile: str | None = None) -> list[Doc]:
        files = self.deployed(profile)
        return [d for path in files for d in self.files.get(path, []) if d.get("kind") == "Component"]


def load(root: Path = ROOT) -> Manifests:
    paths = [*sorted((root / "knative").rglob("*.yaml")), *sorted((root / "dapr-components").glob("*.yaml")),
             root / "skaffold.yaml"]
    return Manifests({str(p.relative_to(root)): deploy.load_yaml(p) for p in paths})


def _name(doc: Doc) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def template(service: Doc) -> Doc:
    return service.get("spec", {}).get("template", {})


def annotations(service: Doc) -> dict[str, str]:
    return template(service).get("metadata", {}).get("annotations", {}) or {}


def container(workload: Doc) -> Doc:
    spec = workload.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    containers = pod.get("containers", [{}])
    return containers[0] if containers else {}


# -- schemas ----------------------------------------------------------------------------------------------


def close(schema: Doc) -> Doc:
    """An upstream CRD schema that rejects unknown fields (except where Kubernetes preserves them)."""
    s = dict(schema)
    if s.pop("x-kubernetes-int-or-string", False):
        s.pop("type", None)
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if isinstance(s.get("properties"), dict):
        s["properties"] = {k: close(v) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        s["items"] = close(s["items"])
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = close(s["additionalProperties"])
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(s.get(key), list):
            s[key] = [close(x) for x in s[key]]
    is_object = s.get("type") == "object" or "properties" in s
    if is_object and not s.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in s:
        s["additionalProperties"] = False
    return s


@cache
def crd_schemas() -> dict[tuple[str, str], Doc]:
    """(apiVersion, kind) → the closed openAPIV3Schema of that served version, from ../shared/crds."""
    schemas = {}
    for path in sorted((SHARED / "crds").rglob("*.yaml")):
        for crd in deploy.load_yaml(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", False):
                    continue
                schema = close(version["schema"]["openAPIV3Schema"])
                # apiVersion, kind and metadata are the API server's; metadata is checked as ObjectMeta.
                schema["properties"] = {**schema.get("properties", {}), "apiVersion": {"type": "string"},
                                        "kind": {"type": "string"}, "metadata": {"type": "object"}}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


@cache
def skaffold_schema() -> Doc:
    return json.loads((SHARED / "schemas" / "skaffold-v4beta14.json").read_text())  # type: ignore[no-any-return]


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The innermost cause of an anyOf/oneOf failure (skaffold's schema is made of them)."""
    while error.context:  # the branch that got furthest into the document is the one meant
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def _errors(validator: jsonschema.protocols.Validator, doc: Doc, where: str) -> list[str]:
    errors = [_leaf(e) for e in validator.iter_errors(doc)]
    return [f"{where}: {'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:300]}"
            for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path)))]


def _builtin(doc: Doc, where: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{where}: {'.'.join(str(p) for p in exc.path) or '(root)'}: {exc.message}"]
    except SchemaNotFoundError:
        return [f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')} "
                "(neither an upstream CRD in ../shared nor a built-in kind)"]
    return []


def schema_problems(manifests: Manifests) -> list[str]:
    problems = []
    for path, doc in manifests.docs():
        where = f"{path}: {_name(doc)}"
        if path == "skaffold.yaml":
            problems += _errors(jsonschema.Draft7Validator(skaffold_schema()), doc, where)
            continue
        schema = crd_schemas().get((str(doc.get("apiVersion")), str(doc.get("kind"))))
        if schema is None:
            problems += _builtin(doc, where)
            continue
        problems += _errors(jsonschema.Draft7Validator(schema), doc, where)
        # The CRD leaves metadata to the API server: check it as the ObjectMeta of a built-in kind.
        problems += _builtin({"apiVersion": "v1", "kind": "ConfigMap", "metadata": doc.get("metadata", {})},
                             f"{where} metadata")
    return problems


# -- Dapr component metadata ------------------------------------------------------------------------------


def _metadata_definition(component_type: str, version: str) -> Doc | None:
    for name in (f"{component_type}.{version}.yaml", f"{component_type}.yaml"):
        path = SHARED / "dapr-metadata" / name
        if path.is_file():
            return deploy.load_yaml(path)[0]
    return None


def dapr_metadata_problems(manifests: Manifests) -> list[str]:
    problems = []
    for path, doc in manifests.docs("Component", "dapr.io"):
        where = f"{path}: {_name(doc)}"
        spec = doc.get("spec", {})
        definition = _metadata_definition(str(spec.get("type")), str(spec.get("version")))
        if definition is None:
            problems.append(f"{where}: no metadata definition for {spec.get('type')} {spec.get('version')} "
                            "in ../shared/dapr-metadata")
            continue
        profiles = definition.get("authenticationProfiles", []) + definition.get("builtinAuthenticationProfiles", [])
        known: dict[str, Doc] = {m["name"]: dict(m) for m in definition.get("metadata", [])}
        for profile in profiles:
            for m in profile.get("metadata", []):
                if m["name"] not in known:
                    known[m["name"]] = dict(m)
                elif "allowedValues" in known[m["name"]]:  # authType: each profile allows its own value
                    known[m["name"]]["allowedValues"] = [*known[m["name"]]["allowedValues"],
                                                         *m.get("allowedValues", [])]
        entries = spec.get("metadata", [])
        values = {e["name"]: e.get("value") for e in entries if "value" in e}
        is_set = {e["name"] for e in entries
                  if e.get("secretKeyRef") or e.get("envRef") or e.get("value") not in (None, "")}
        for entry in entries:
            field = known.get(entry["name"])
            if field is None:
                problems.append(f"{where}: metadata {entry['name']!r} is not a field of {spec.get('type')}")
                continue
            allowed = field.get("allowedValues")
            if allowed and "value" in entry and str(entry["value"]) not in map(str, allowed):
                problems.append(f"{where}: metadata {entry['name']} = {entry['value']!r} is not one of {allowed}")
        required = {m["name"] for m in definition.get("metadata", []) if m.get("required")}
        auth = definition.get("authenticationProfiles", [])
        if any(m["name"] == "authType" for p in auth for m in p.get("metadata", [])):
            # Profiles told apart by authType: it must name one, whose required fields then apply.
            auth_type = values.get("authType")
            chosen = [p for p in auth if any(
                m["name"] == "authType" and str(auth_type) in map(str, m.get("allowedValues", []))
                for m in p.get("metadata", []))]
            if not chosen:
                problems.append(f"{where}: authType {auth_type!r} names no authentication profile")
        else:  # optional profiles (smtp's user/password): one that is started must be complete
            chosen = [p for p in auth if any(m["name"] in is_set for m in p.get("metadata", []))]
        for profile in chosen:
            required |= {m["name"] for m in profile.get("metadata", []) if m.get("required")}
        problems += [f"{where}: required metadata {name!r} is not set" for name in sorted(required - is_set)]
    return problems


# -- functions, images, scaling ---------------------------------------------------------------------------


def function_problems(manifests: Manifests, project: deploy.Project, dockerfile: str | None = None) -> list[str]:
    problems = []
    dockerfile = (ROOT / "Dockerfile").read_text() if dockerfile is None else dockerfile
    services = manifests.services()
    skaffold = manifests.skaffold()
    builds = {"default": skaffold["build"]["artifacts"]}
    builds |= {p["name"]: p["build"]["artifacts"] for p in skaffold.get("profiles", []) if "build" in p}
    names = {fn.name for fn in project.functions()}
    for fn in project.functions():
        service = services.get(fn.name)
        if service is None:
            problems.append(f"{fn.name}: no Knative Service")
        elif container(service).get("image") != f"dev.local/{fn.name}":
            problems.append(f"{fn.name}: the Knative Service runs {container(service).get('image')!r}, "
                            f"not dev.local/{fn.name}")
        for profile, artifacts in builds.items():
            matching = [a for a in artifacts if a["image"] == f"dev.local/{fn.name}"]
            if not matching:
                problems.append(f"{fn.name}: no skaffold artifact dev.local/{fn.name} ({profile} build)")
            elif matching[0].get("docker", {}).get("buildArgs", {}).get("FUNCTION") != fn.name:
                problems.append(f"{fn.name}: skaffold artifact dev.local/{fn.name} ({profile}) does not build "
                                f"with FUNCTION={fn.name}")
    if not re.search(r"^ARG FUNCTION$", dockerfile, re.M):
        problems.append("Dockerfile: no ARG FUNCTION")
    if "COPY functions/${FUNCTION}/main.py" not in dockerfile:
        problems.append("Dockerfile: does not copy functions/${FUNCTION}/main.py")
    for name in services:
        if name not in names and name != deploy.GATEWAY:
            problems.append(f"Knative Service {name}: no such function in functions/")
    images = {a["image"] for artifacts in builds.values() for a in artifacts}
    for path in manifests.deployed():
        for doc in manifests.files.get(path, []):
            image = container(doc).get("image") if doc.get("kind") in ("Service", "Job") else None
            if image and image.startswith("dev.local/") and image not in images:
                problems.append(f"{path}: {_name(doc)} runs {image}, which no skaffold artifact builds")
    return problems


def scaling_problems(manifests: Manifests) -> list[str]:
    problems = []
    for name, service in manifests.services().items():
        notes = annotations(service)
        spec = template(service).get("spec", {})
        box = container(service)
        min_scale = notes.get("autoscaling.knative.dev/min-scale")
        if min_scale is None:
            problems.append(f"{name}: no autoscaling.knative.dev/min-scale")
        elif min_scale != "0" and not notes.get(deploy.MIN_SCALE_REASON):
            problems.append(f"{name}: min-scale {min_scale} without a reason ({deploy.MIN_SCALE_REASON})")
        for key in ("autoscaling.knative.dev/target", "autoscaling.knative.dev/max-scale"):
            if key not in notes:
                problems.append(f"{name}: no {key}")
        if "containerConcurrency" not in spec:
            problems.append(f"{name}: no containerConcurrency")
        if not 0 < int(spec.get("timeoutSeconds", 0)) <= 600:
            problems.append(f"{name}: timeoutSeconds must be set, at most 600")
        resources = box.get("resources", {})
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(part, {}):
                    problems.append(f"{name}: no {resource} {part}")
        # A function is ready when its database (and sidecar) answer; the gateway has neither.
        probe = HEALTH_PATH if name == deploy.GATEWAY else READY_PATH
        if box.get("readinessProbe", {}).get("httpGet", {}).get("path") != probe:
            problems.append(f"{name}: no readiness probe on {probe}")
        if name != deploy.GATEWAY:
            scrape = {k: notes.get(k) for k in ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")}
            if scrape != {"prometheus.io/scrape": "true", "prometheus.io/port": str(deploy.APP_PORT),
                          "prometheus.io/path": METRICS_PATH}:
                problems.append(f"{name}: no scrape annotations for {METRICS_PATH} on its own port")
        if box.get("securityContext", {}).get("runAsNonRoot") is not True:
            problems.append(f"{name}: not runAsNonRoot")
    return problems


def visibility_problems(manifests: Manifests, project: deploy.Project) -> list[str]:
    problems = []
    services = manifests.services()
    expected = {fn.name: fn.public for fn in project.functions()} | {deploy.GATEWAY: True}
    for name, public in expected.items():
        service = services.get(name)
        if service is None:
            continue
        local = service["metadata"].get("labels", {}).get("networking.knative.dev/visibility") == "cluster-local"
        if public and local:
            problems.append(f"{name}: must be public, is cluster-local")
        if not public and not local:
            problems.append(f"{name}: must be cluster-local (networking.knative.dev/visibility), is public")
    return problems


# -- Dapr sidecars, scopes, secrets -----------------------------------------------------------------------


def _pairs(value: str) -> dict[str, str]:
    return dict(item.strip().split("=", 1) for item in value.split(",") if "=" in item)


def dapr_problems(manifests: Manifests, project: deploy.Project, profile: str | None = None) -> list[str]:
    problems = []
    services = manifests.services()
    components = manifests.deployed_components(profile)
    scoped = {s for c in components for s in c.get("scopes", [])}
    configurations = {d["metadata"]["name"] for _, d in manifests.docs("Configuration", "dapr.io")}
    sidecars = {}
    for name, service in services.items():
        notes = annotations(service)
        unknown = sorted(k for k in notes if k.startswith("dapr.io/") and k not in DAPR_ANNOTATIONS)
        problems += [f"{name}: unknown Dapr annotation {k}" for k in unknown]
        if notes.get("dapr.io/enabled") != "true":
            continue
        sidecars[name] = notes
        if notes.get("dapr.io/app-id") != name:
            problems.append(f"{name}: dapr.io/app-id is {notes.get('dapr.io/app-id')!r}, not the function's name")
        ports = [p.get("containerPort") for p in container(service).get("ports", [])]
        if notes.get("dapr.io/app-port") != str(ports[0] if ports else None):
            problems.append(f"{name}: dapr.io/app-port {notes.get('dapr.io/app-port')} is not the container "
                            f"port {ports[0] if ports else None}")
        metrics = int(notes.get("dapr.io/metrics-port", "9090"))
        if metrics in deploy.QUEUE_PROXY_PORTS | DAPR_PORTS or metrics in ports:
            problems.append(f"{name}: dapr.io/metrics-port {metrics} clashes with queue-proxy, daprd or the app")
        if notes.get("dapr.io/config") and notes["dapr.io/config"] not in configurations:
            problems.append(f"{name}: dapr.io/config {notes['dapr.io/config']} names no Dapr Configuration")
        if name not in scoped:
            problems.append(f"{name}: has a Dapr sidecar but no deployed Dapr component scopes it")
    for c in components:
        for app in c.get("scopes", []):
            if app not in sidecars:
                problems.append(f"component {c['metadata']['name']} scopes {app}, which runs no Dapr sidecar "
                                "(no Knative Service with dapr.io/app-id)")
    # Components reading the env secret store resolve against daprd's own environment.
    env_stores = {c["metadata"]["name"] for c in components if c["spec"]["type"] == "secretstores.local.env"}
    for c in components:
        if c.get("auth", {}).get("secretStore") not in env_stores:
            continue
        wanted = {m["secretKeyRef"]["name"] for m in c["spec"]["metadata"] if "secretKeyRef" in m}
        for app in c.get("scopes", list(sidecars)):
            notes = sidecars.get(app, {})
            env = set(_pairs(notes.get("dapr.io/env", ""))) | set(_pairs(notes.get("dapr.io/env-from-secret", "")))
            problems += [f"{app}: component {c['metadata']['name']} reads {var} from the env secret store, "
                         "but daprd's environment has no such variable (dapr.io/env, dapr.io/env-from-secret)"
                         for var in sorted(wanted - env)]
    return problems


def _secret_refs(manifests: Manifests) -> Iterator[tuple[str, str, str]]:
    """(where, secret, key) of every Kubernetes Secret key the deployment needs (optional ones left out:
    a pod starts without them, e.g. the TLS settings of a database that the minikube profile runs plain)."""
    for path, doc in manifests.docs():
        if doc.get("kind") in ("Service", "Job", "StatefulSet"):
            for env in container(doc).get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    yield f"{path}: {_name(doc)} env {env['name']}", ref["name"], ref["key"]
        if doc.get("kind") == "Service" and doc.get("apiVersion") == KNATIVE_SERVICE:
            for var, ref in _pairs(annotations(doc).get("dapr.io/env-from-secret", "")).items():
                secret, _, key = ref.partition(":")
                yield f"{path}: {_name(doc)} dapr.io/env-from-secret {var}", secret, key or secret


def secret_problems(manifests: Manifests, dev_secrets: str = "knative/in-cluster/secrets.yaml") -> list[str]:
    problems = []
    secrets = {d["metadata"]["name"]: set(d.get("stringData", {})) | set(d.get("data", {}))
               for d in manifests.files.get(dev_secrets, []) if d.get("kind") == "Secret"}
    for where, secret, key in _secret_refs(manifests):
        if key not in secrets.get(secret, set()):
            problems.append(f"{where}: reads {secret}/{key}, which {dev_secrets} does not hold")
    settings = (ROOT / "shared" / "todo" / "settings.py").read_text()
    for path, doc in manifests.docs("Service", "serving.knative.dev"):
        for env in container(doc).get("env", []):
            if env["name"].startswith("TODO_") and f'"{env["name"]}"' not in settings:
                problems.append(f"{path}: {_name(doc)} sets {env['name']}, which todo.settings does not read")
    return problems


def migration_problems(manifests: Manifests) -> list[str]:
    problems = []
    jobs = [(p, d) for p, d in manifests.docs("Job", "batch")
            if container(d).get("command", []) + container(d).get("args", [])
            == ["python", "-m", "todo.cli", "migrate"]]
    if len(jobs) != 1:
        return [f"expected one Job running `todo migrate`, found {len(jobs)}"]
    path, job = jobs[0]
    env = {e["name"]: e for e in container(job).get("env", [])}
    if "secretKeyRef" not in env.get("TODO_DATABASE_URL", {}).get("valueFrom", {}):
        problems.append(f"{path}: the migration Job does not read TODO_DATABASE_URL from a Secret")
    if path not in manifests.deployed():
        problems.append(f"{path}: skaffold does not deploy the migration Job")
    hooks = manifests.skaffold()["deploy"]["kubectl"].get("hooks", {}).get("before", [])
    if not any(job["metadata"]["name"] in h.get("host", {}).get("command", []) for h in hooks):
        problems.append("skaffold: no hook deletes the finished migration Job before a deploy (its template "
                        "cannot change)")
    for name, service in manifests.services().items():
        if "migrate" in container(service).get("command", []) + container(service).get("args", []):
            problems.append(f"{name}: migrates on start; the migration Job does that")
    return problems


def database_tls_problems(manifests: Manifests) -> list[str]:
    """Whatever reaches PostgreSQL (every function, the migration Job) has its TLS settings from todo-secrets
    and the CA/client-certificate files of todo-database-tls at the place those settings name."""
    problems = []
    for path, doc in manifests.docs():
        if doc.get("kind") not in ("Service", "Job"):
            continue
        box = container(doc)
        env = {e["name"]: e for e in box.get("env", [])}
        if "TODO_DATABASE_URL" not in env:
            continue
        where = f"{path}: {_name(doc)}"
        for name in deploy.DATABASE_TLS_SETTINGS:
            ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef", {})
            if (ref.get("name"), ref.get("key")) != (deploy.APP_SECRET, name):
                problems.append(f"{where}: {name} is not read from {deploy.APP_SECRET}")
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounted = [m for m in box.get("volumeMounts", []) if m.get("mountPath") == deploy.DATABASE_TLS_DIR]
        secret = volumes.get(mounted[0]["name"], {}).get("secret", {}) if mounted else {}
        if secret.get("secretName") != deploy.DATABASE_TLS_SECRET:
            problems.append(f"{where}: {deploy.DATABASE_TLS_SECRET} is not mounted at {deploy.DATABASE_TLS_DIR}")
    return problems


# -- events: KafkaSources, dead letters, producers, schedules -----------------------------------------------


def event_problems(manifests: Manifests, project: deploy.Project) -> list[str]:
    problems = []
    services = manifests.services()
    sinks = {d["metadata"]["name"]: d for _, d in manifests.docs("KafkaSink", "eventing.knative.dev")}
    sources = [d for _, d in manifests.docs("KafkaSource", "sources.knative.dev")]
    event_functions = {fn.name for fn in project.functions() if fn.subscriptions}
    delivered = {}
    for src in sources:
        where, spec = _name(src), src.get("spec", {})
        topics = spec.get("topics", [])
        ref = spec.get("sink", {}).get("ref", {})
        target = ref.get("name")
        if len(topics) != 1:
            problems.append(f"{where}: one topic per KafkaSource, got {topics}")
            continue
        if (topics[0], target) in delivered:
            problems.append(f"{where}: {topics[0]} → {target} is delivered twice (also by "
                            f"{_name(delivered[(topics[0], target)])})")
        delivered[(topics[0], target)] = src
        if ref.get("kind") != "Service" or ref.get("apiVersion") != KNATIVE_SERVICE or target not in services:
            problems.append(f"{where}: sink {ref.get('kind')}/{target} is no Knative Service of this deployment")
        elif target not in event_functions:
            problems.append(f"{where}: sink {target} consumes no topic in todo.routes.SUBSCRIPTIONS")
        if spec.get("sink", {}).get("uri") != "/events":
            problems.append(f"{where}: sink uri {spec.get('sink', {}).get('uri')!r}; event functions take /events")
        if not spec.get("consumerGroup"):
            problems.append(f"{where}: no consumerGroup")
        if spec.get("initialOffset") != "earliest":
            problems.append(f"{where}: initialOffset must be earliest (a new group reads the backlog)")
        delivery = spec.get("delivery", {})
        if not delivery.get("retry") or delivery.get("backoffPolicy") not in ("exponential", "linear") \
                or not re.fullmatch(r"PT[\d.]+S", str(delivery.get("backoffDelay", ""))):
            problems.append(f"{where}: delivery needs retry, backoffPolicy and backoffDelay")
        dls = delivery.get("deadLetterSink", {}).get("ref", {})
        sink = sinks.get(dls.get("name")) if dls.get("kind") == "KafkaSink" else None
        if sink is None:
            problems.append(f"{where}: dead-letter sink {dls.get('kind')}/{dls.get('name')} does not exist")
        elif sink["spec"]["topic"] != f"{topics[0]}.dlq":
            problems.append(f"{where}: dead letters go to {sink['spec']['topic']}, not {topics[0]}.dlq")
        for other in [*sources, *sinks.values()]:
            if other["spec"].get("bootstrapServers") != spec.get("bootstrapServers"):
                problems.append(f"{where}: {_name(other)} connects to other brokers")
                break
    groups = [s.get("spec", {}).get("consumerGroup") for s in sources]
    problems += [f"consumer group {g} is shared by two KafkaSources" for g in sorted({g for g in groups
                                                                                      if groups.count(g) > 1})]
    expected = {(s.topic, s.function) for s in project.consumed()}
    problems += [f"subscription {t} → {f}: no KafkaSource" for t, f in sorted(expected - set(delivered))]
    problems += [f"KafkaSource {t} → {f}: no such subscription in todo.routes" for t, f in
                 sorted(set(delivered) - expected)]
    # The same wiring daprd has locally (dapr-components/ Subscriptions): topic, function, route, DLQ topic.
    for _, sub in manifests.docs("Subscription", "dapr.io"):
        spec = sub["spec"]
        for app in sub.get("scopes", []):
            src = delivered.get((spec["topic"], app))
            if src is None:
                problems.append(f"Dapr Subscription {sub['metadata']['name']} ({spec['topic']} → {app}): "
                                "no KafkaSource delivers it in the cluster")
                continue
            dls = sinks.get(src["spec"].get("delivery", {}).get("deadLetterSink", {}).get("ref", {}).get("name"))
            if dls is not None and dls["spec"]["topic"] != spec.get("deadLetterTopic"):
                problems.append(f"{_name(src)}: dead-letter topic {dls['spec']['topic']} differs from Dapr's "
                                f"{spec.get('deadLetterTopic')}")
            if spec.get("routes", {}).get("default") != src["spec"]["sink"].get("uri"):
                problems.append(f"{_name(src)}: path differs from the Dapr Subscription's route")
    return problems


def producer_report(project: deploy.Project, producers: dict[str, tuple[str, ...]],
                    manifests: Manifests) -> tuple[list[str], dict[str, str]]:
    """(problems, topics consumed today whose every declared producer is still missing: topic → why)."""
    problems, pending = [], {}
    publishers = {s for c in manifests.deployed_components() if c["spec"]["type"].startswith("pubsub.")
                  for s in c.get("scopes", [])}
    for topic in dict.fromkeys(s.topic for s in project.consumed()):
        declared = producers.get(topic)
        consumers = ", ".join(s.function for s in project.consumed() if s.topic == topic)
        if not declared:
            problems.append(f"topic {topic} is consumed by {consumers} but nobody produces it (PRODUCERS in "
                            "shared/todo_dev/deploy/model.py)")
            continue
        present = [p for p in declared if project.present(p)]
        if not present:
            pending[topic] = (f"{topic} is consumed by {consumers}; its producer {', '.join(declared)} "
                              "does not exist yet, so nothing reaches it in the cluster today")
        for p in present:
            if p not in publishers:
                problems.append(f"{p} produces {topic} but no deployed pub/sub component scopes it")
    return problems, pending


def schedule_problems(manifests: Manifests, project: deploy.Project) -> list[str]:
    problems = []
    services = manifests.services()
    pings = [d for _, d in manifests.docs("PingSource", "sources.knative.dev")]
    for ping in pings:
        spec, where = ping.get("spec", {}), _name(ping)
        ref = spec.get("sink", {}).get("ref", {})
        if ref.get("name") not in services or ref.get("apiVersion") != KNATIVE_SERVICE:
            problems.append(f"{where}: sink {ref.get('name')} is no Knative Service of this deployment")
        answered = [t.path for t in ticks_of(str(ref.get("name")))]
        if ref.get("name") in services and spec.get("sink", {}).get("uri") not in answered:
            problems.append(f"{where}: {ref.get('name')} answers ticks on {', '.join(answered) or 'no path'} only")
        if len(str(spec.get("schedule", "")).split()) != 5:
            problems.append(f"{where}: schedule {spec.get('schedule')!r} is not a 5-field cron expression")
    for tick in project.schedules():  # the route table's ticks
        present = [s for s in tick.functions if project.present(s)]
        if present and not any(p.get("spec", {}).get("sink", {}).get("ref", {}).get("name") in present
                               and p["spec"]["sink"].get("uri") == f"/{tick.name}" for p in pings):
            problems.append(f"tick {tick.name} ({', '.join(present)}): no PingSource posts /{tick.name} "
                            "to one of them, so it stops while they are scaled to zero")
    return problems


# -- the public entry -------------------------------------------------------------------------------------


def gateway_upstreams(manifests: Manifests) -> dict[str, str]:
    args = container(manifests.services()[deploy.GATEWAY]).get("args", [])
    return dict(a.removeprefix("--upstream=").split("=", 1) for a in args if a.startswith("--upstream="))


def _concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", "42", path)


def gateway_problems(manifests: Manifests, routes: tuple[Route, ...]) -> list[str]:
    """The deployed gateway, driven with a request per route: each must reach its function's Service."""
    services = manifests.services()
    if deploy.GATEWAY not in services:
        return ["no gateway Knative Service"]
    problems = []
    upstreams = gateway_upstreams(manifests)
    for name, url in upstreams.items():
        if name not in services:
            problems.append(f"gateway forwards to {name}, which has no Knative Service")
        elif url != f"http://{name}.{services[name]['metadata']['namespace']}.svc.cluster.local":
            problems.append(f"gateway forwards {name} to {url}, not its cluster-local address")
    for name in sorted(set(upstreams) - {r.function for r in routes}):
        problems.append(f"gateway forwards to {name}, which serves no route")
    addresses = {name: f"http://{name}.{svc['metadata']['namespace']}.svc.cluster.local"
                 for name, svc in services.items()}
    return problems + dispatch_problems(upstreams, routes, addresses)


def dispatch_problems(upstreams: dict[str, str], routes: tuple[Route, ...],
                      addresses: dict[str, str]) -> list[str]:
    """Send each route's method and path through the real gateway app, configured with ``upstreams``;
    it must arrive at the address of the route's function (``addresses``: Knative Service → URL)."""
    def upstream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"url": str(request.url), "method": request.method})

    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(upstream), **kwargs)

    with mock.patch.object(httpx, "AsyncClient", client):
        app = build_proxy_app(upstreams)
    problems = []
    with TestClient(app, raise_server_exceptions=False) as http:
        for route in routes:
            path = _concrete(route.path)
            line = f"{route.method} {route.path} → {route.function}"
            if route.function not in upstreams:
                problems.append(f"{line}: the gateway has no upstream for {route.function}")
                continue
            if route.function not in addresses:
                problems.append(f"{line}: {route.function} has no Knative Service")
                continue
            reply = http.request(route.method, path)
            want = addresses[route.function] + path
            got = reply.json().get("url") if reply.status_code == 200 else f"HTTP {reply.status_code}"
            if got != want:
                problems.append(f"{line}: the gateway sent it to {got}, not {want}")
    return problems


# -- skaffold -----------------------------------------------------------------------------------------------


def skaffold_problems(manifests: Manifests, project: deploy.Project) -> list[str]:
    problems = []
    config = manifests.skaffold()
    if config.get("apiVersion") != "skaffold/v4beta14":
        problems.append(f"skaffold.yaml: apiVersion {config.get('apiVersion')}, not skaffold/v4beta14")
    profiles = {p["name"]: p for p in config.get("profiles", [])}
    minikube = profiles.get("minikube")
    if minikube is None:
        return [*problems, "skaffold.yaml: no minikube profile"]
    if minikube.get("build", {}).get("local", {}).get("push") is not False:
        problems.append("skaffold.yaml: the minikube profile must build locally without pushing")
    for artifact in minikube.get("build", {}).get("artifacts", []):
        if artifact["image"] == deploy.LIBRARY_IMAGE:
            continue
        rules = artifact.get("sync", {}).get("manual", [])
        if not any(r["src"].startswith("shared/todo/") and r["src"].endswith(".py") for r in rules):
            problems.append(f"skaffold.yaml: minikube {artifact['image']} does not sync the library's sources")
    deployed = {p for name in [None, *profiles] for p in manifests.deployed(name)}
    for path in manifests.files:
        if path.startswith("knative/") and path not in deployed:
            problems.append(f"{path}: no skaffold profile deploys it")
    for path in deployed:
        if not path.startswith(deploy.MANAGED_KAFKA_DIR + "/") and not (ROOT / path).is_file() \
                and path not in manifests.files:
            problems.append(f"skaffold.yaml deploys {path}, which does not exist")
    for path, docs in project.dapr_components():
        replaced = [deploy.cluster_replacement(d) for d in docs]
        if any(replaced) and path in manifests.deployed():
            problems.append(f"skaffold.yaml deploys {path} to the cluster, where {replaced[0]}")
        if not any(replaced) and path not in manifests.deployed():
            problems.append(f"skaffold.yaml does not deploy {path}")
    return problems


# -- helpers for the tests ------------------------------------------------------------------------------------


Check = Callable[[Manifests], list[str]]


def first(problems: list[str], needle: str) -> str | None:
    return next((p for p in problems if needle in p), None)
