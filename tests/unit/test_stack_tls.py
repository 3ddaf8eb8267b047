"""The TLS stack's files (todo_dev.stack_tls): daprd gets the managed profile's component itself, and a
stand-in Secret that holds every key it reads."""

from __future__ import annotations

import json
from pathlib import Path

from todo_dev.deploy import MANAGED_PUBSUB, ROOT, load_yaml
from todo_dev.stack_tls import SECRET_STORE, StackTLS


def test_daprd_loads_the_managed_pubsub_as_deployed_with_every_key_it_reads(tmp_path: Path) -> None:
    tls = StackTLS.make(tmp_path / "certs")
    out = tls.dapr_resources("127.0.0.1:9092")
    components = {d["metadata"]["name"]: d for p in out.glob("*.yaml") for d in load_yaml(p)
                  if d.get("kind") == "Component"}
    assert (out / "pubsub.yaml").read_text() == (ROOT / MANAGED_PUBSUB).read_text()  # not a copy made here
    assert [c for c in components.values() if c["spec"]["type"] == "pubsub.kafka"] == [components["pubsub"]]
    store = components[SECRET_STORE]
    assert store["spec"]["type"] == "secretstores.local.file"
    secrets_file = Path(next(m["value"] for m in store["spec"]["metadata"] if m["name"] == "secretsFile"))
    held = json.loads(secrets_file.read_text())
    wanted = {(m["secretKeyRef"]["name"], m["secretKeyRef"]["key"]) for m in components["pubsub"]["spec"]["metadata"]
              if "secretKeyRef" in m}
    assert {(name, key) for name, keys in held.items() for key in keys} >= wanted
    assert held["todo-kafka"]["ca.crt"] == tls.ca_file.read_text()
    assert secrets_file.stat().st_mode & 0o077 == 0
