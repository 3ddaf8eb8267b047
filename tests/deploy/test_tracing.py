"""daprd's tracing: in the cluster every sidecar samples every span and exports it over OTLP gRPC to a
Service whose pods receive OTLP gRPC on that port (the in-cluster Jaeger, whose config Jaeger itself
accepts); locally every daprd does the same to the stack's Jaeger (scripts/stack/dapr-config.yaml)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from todo_dev.deploy import GATEWAY
from todo_dev.deploy.model import DAPR_CONFIGURATION
from todo_dev.stack import CACHE, SCRIPTS

from .checks import Doc, Manifests, container, crd_schemas

JAEGER_FILE = "knative/in-cluster/jaeger.yaml"
LOCAL_DAPR_CONFIG = SCRIPTS / "dapr-config.yaml"


@pytest.fixture(scope="session")
def jaeger() -> Path:
    subprocess.run([str(SCRIPTS / "install-jaeger.sh")], check=True)
    return CACHE / "bin" / "jaeger"


def _core(manifests: Manifests, kind: str, name: str, namespace: str) -> Doc | None:
    for _, doc in manifests.docs(kind):
        meta = doc.get("metadata", {})
        if meta.get("name") == name and meta.get("namespace") == namespace:
            return doc
    return None


def collector_config(manifests: Manifests, deployment: Doc) -> dict[str, Any]:
    """The config file the collector Deployment runs with (from the ConfigMap it mounts at --config)."""
    box = container(deployment)
    args = box.get("args", [])
    path = Path(args[args.index("--config") + 1])
    mounts = {m["name"]: m["mountPath"] for m in box.get("volumeMounts", [])}
    for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
        if "configMap" in volume and mounts.get(volume["name"]) == str(path.parent):
            config_map = manifests.get("ConfigMap", volume["configMap"]["name"])
            config: dict[str, Any] = yaml.safe_load(config_map["data"][path.name])
            return config
    raise KeyError(f"no ConfigMap mounted at {path.parent}")


def tracing_problems(manifests: Manifests) -> list[str]:
    """What breaks the path of the sidecars' spans (the Dapr Configuration) or of the functions' spans
    (their OTEL_EXPORTER_OTLP_ENDPOINT) to the collector's OTLP receiver."""
    try:
        configuration = manifests.get("Configuration", DAPR_CONFIGURATION, "dapr.io")
    except KeyError:
        return [f"no Dapr Configuration {DAPR_CONFIGURATION}"]
    tracing = configuration.get("spec", {}).get("tracing", {})
    otel = tracing.get("otel", {})
    problems = []
    if tracing.get("samplingRate") != "1":
        problems.append(f"samplingRate is {tracing.get('samplingRate')!r}, not \"1\" (every span)")
    if otel.get("protocol") != "grpc" or otel.get("isSecure") is not False:
        problems.append("otel must be protocol grpc, isSecure false (the collector takes plain OTLP gRPC)")
    problems += collector_problems(manifests, str(otel.get("endpointAddress")), "grpc", "otel endpointAddress")
    for name, service in manifests.services().items():
        env = {e["name"]: e.get("value") for e in container(service).get("env", [])}
        if name == GATEWAY:
            continue  # it answers no change of its own: nothing to trace
        endpoint = str(env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
        if not endpoint.startswith("http://"):
            problems.append(f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT {endpoint!r} is no http:// OTLP/HTTP endpoint")
            continue
        problems += collector_problems(manifests, endpoint.removeprefix("http://"), "http",
                                       f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT")
    return problems


def collector_problems(manifests: Manifests, address: str, protocol: str, who: str) -> list[str]:
    """Whether ``address`` (``<service>.<namespace>.svc.cluster.local:<port>``) reaches a collector pod whose
    OTLP receiver for ``protocol`` (grpc, http) listens on the port the Service sends to."""
    found = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)", address)
    if found is None:
        return [f"{who} {address!r} is no <service>.<namespace>.svc.cluster.local:<port>"]
    name, namespace, port = found.group(1), found.group(2), int(found.group(3))
    service = _core(manifests, "Service", name, namespace)
    if service is None:
        return [f"{who} {name}.{namespace}: no such Service in knative/"]
    target = next((p.get("targetPort", p["port"]) for p in service["spec"]["ports"] if p["port"] == port), None)
    if target is None:
        return [f"{who}: Service {name} has no port {port}"]
    selector = service["spec"].get("selector", {})
    pods = [d for _, d in manifests.docs("Deployment")
            if selector and selector.items() <= d["spec"]["template"]["metadata"].get("labels", {}).items()]
    if not pods:
        return [f"{who}: Service {name} selects no Deployment"]
    ports = {p.get("name"): p["containerPort"] for p in container(pods[0]).get("ports", [])}
    container_port = ports.get(target) if isinstance(target, str) else target
    if container_port not in ports.values():
        return [f"{who}: Service {name} port {port} targets {target!r}, which the collector does not expose"]
    receiver = collector_config(manifests, pods[0]).get("receivers", {}).get("otlp", {}).get("protocols", {})
    listening = str((receiver.get(protocol) or {}).get("endpoint", ""))
    if not listening.endswith(f":{container_port}"):
        return [f"{who}: Service {name} sends OTLP {protocol} to container port {container_port}; the collector's "
                f"OTLP {protocol} receiver listens on {listening or 'its default'}"]
    return []


def test_every_sidecar_and_every_function_exports_every_span_to_the_in_cluster_collector(
        manifests: Manifests) -> None:
    assert tracing_problems(manifests) == []
    sidecars = [s for s in manifests.services().values()
                if s["spec"]["template"]["metadata"]["annotations"].get("dapr.io/enabled") == "true"]
    assert sidecars
    assert all(s["spec"]["template"]["metadata"]["annotations"].get("dapr.io/config") == DAPR_CONFIGURATION
               for s in sidecars)


def _configuration(m: Manifests) -> Doc:
    return m.get("Configuration", DAPR_CONFIGURATION, "dapr.io")


def _collector_config(m: Manifests) -> Doc:
    config_map = m.get("ConfigMap", "jaeger-config")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "0.0.0.0:14317"
    config_map["data"]["config.yaml"] = yaml.safe_dump(config)
    return config


def _function_env(m: Manifests, endpoint: str | None) -> None:
    env = container(m.services()["create-task"])["env"]
    env[:] = [e for e in env if e["name"] != "OTEL_EXPORTER_OTLP_ENDPOINT"]
    if endpoint is not None:
        env.append({"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": endpoint})


BROKEN: list[tuple[str, Callable[[Manifests], object], str]] = [
    ("sampling off", lambda m: _configuration(m)["spec"]["tracing"].update(samplingRate="0"), "samplingRate"),
    ("no tracing at all", lambda m: _configuration(m)["spec"].pop("tracing"), "endpointAddress"),
    ("a Service that does not exist",
     lambda m: _configuration(m)["spec"]["tracing"]["otel"].update(endpointAddress="tempo.todo.svc.cluster.local:4317"),
     "no such Service"),
    ("a port the Service lacks",
     lambda m: _configuration(m)["spec"]["tracing"]["otel"].update(endpointAddress="otel-collector.todo.svc."
                                                                                   "cluster.local:9411"),
     "has no port 9411"),
    ("the receiver on another port", _collector_config, "OTLP grpc receiver listens on 0.0.0.0:14317"),
    ("a function exporting to the gRPC port over HTTP",
     lambda m: _function_env(m, "http://otel-collector.todo.svc.cluster.local:4317"),
     "create-task: OTEL_EXPORTER_OTLP_ENDPOINT: Service otel-collector sends OTLP http to container port 4317"),
    ("a function not exporting", lambda m: _function_env(m, None), "create-task: OTEL_EXPORTER_OTLP_ENDPOINT 'None'"),
]


@pytest.mark.parametrize(("what", "mutate", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_tracing_path_is_reported(broken: Manifests, what: str, mutate: Callable[[Manifests], object],
                                           expected: str) -> None:
    mutate(broken)
    assert any(expected in p for p in tracing_problems(broken)), tracing_problems(broken)


def test_jaeger_accepts_the_in_cluster_config(jaeger: Path, manifests: Manifests, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(manifests.get("ConfigMap", "jaeger-config")["data"]["config.yaml"])
    result = subprocess.run([str(jaeger), "validate", "--config", str(config)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr

    config.write_text(config.read_text().replace("max_traces:", "max_trace:"))  # a misspelt field
    result = subprocess.run([str(jaeger), "validate", "--config", str(config)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "max_trace" in result.stderr


def test_the_local_daprd_config_traces_like_the_cluster_one(manifests: Manifests) -> None:
    local = yaml.safe_load(LOCAL_DAPR_CONFIG.read_text())
    schema = crd_schemas()[(local["apiVersion"], local["kind"])]
    jsonschema.validate(local, schema)
    cluster = _configuration(manifests)["spec"]["tracing"]
    assert local["spec"]["tracing"]["samplingRate"] == cluster["samplingRate"]
    assert {k: v for k, v in local["spec"]["tracing"]["otel"].items() if k != "endpointAddress"} == \
        {k: v for k, v in cluster["otel"].items() if k != "endpointAddress"}
    # daprd expands it from its environment (todo_dev.stack sets it to the stack's Jaeger).
    assert local["spec"]["tracing"]["otel"]["endpointAddress"] == "${TODO_OTLP_GRPC_ENDPOINT}"
