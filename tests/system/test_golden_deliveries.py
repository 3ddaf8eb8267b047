"""Capture what daprd really POSTs to a subscriber, and keep it as a golden file in tests/events/.

Unit tests parse the golden files with the event functions' edge, so the code that reads deliveries
is held to what the real sidecar sends. ``TODO_UPDATE_GOLDEN=1`` rewrites the file from a fresh capture.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from todo_dev import ports
from todo_dev.stack import CACHE, ROOT, Stack

from .conftest import eventually

pytestmark = pytest.mark.system
GOLDEN = {False: ROOT / "tests" / "events" / "dapr-envelope-task-created.json",
          True: ROOT / "tests" / "events" / "dapr-bulk-task-created.json"}
VOLATILE = {"id", "time", "traceid", "traceparent", "tracestate"}

CAPTURE_APP = """
import json, sys
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import uvicorn

out = open(sys.argv[2], "a", buffering=1)

async def record(request):
    body = await request.body()
    out.write(json.dumps({"method": request.method, "path": request.url.path,
                          "headers": dict(request.headers), "body": body.decode()}) + "\\n")
    entries = json.loads(body).get("entries")
    if entries is not None:  # a bulk delivery wants a status per entry
        return JSONResponse({"statuses": [{"entryId": e["entryId"], "status": "SUCCESS"} for e in entries]})
    return JSONResponse({"status": "SUCCESS"})

async def health(request):
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/events", record, methods=["POST"]), Route("/healthz", health)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def capture_resources(target: Path, bulk: bool) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for source in (ROOT / "dapr-components").glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
        for doc in docs:
            if doc["kind"] == "Component" and doc["metadata"]["name"] == "pubsub":
                doc["scopes"] = [*doc.get("scopes", []), "capture"]
        (target / source.name).write_text(yaml.safe_dump_all(docs))
    (target / "capture-subscription.yaml").write_text(yaml.safe_dump({
        "apiVersion": "dapr.io/v2alpha1", "kind": "Subscription", "metadata": {"name": "capture"},
        "spec": {"pubsubname": "pubsub", "topic": "task-events", "routes": {"default": "/events"},
                 **({"bulkSubscribe": {"enabled": True, "maxMessagesCount": 200, "maxAwaitDurationMs": 50}}
                    if bulk else {})},
        "scopes": ["capture"]}))
    return target


def normalise(delivery: dict[str, Any], user: str) -> dict[str, Any]:
    envelope = json.loads(delivery["body"])
    if "entries" in envelope:  # bulk: the envelope around the entries, and this user's first entry
        mine = [e for e in envelope["entries"] if e["event"]["data"]["user_id"] == user]
        volatile = {"__key": "<user>", "partitionKey": "<user>", "__offset": "<offset>",
                    "__partition": "<partition>", "__timestamp": "<timestamp>", "cloudevent.id": "<id>"}
        metadata = {k: volatile.get(k, v) for k, v in mine[0]["metadata"].items()}
        entry = {**mine[0], "entryId": "<entryId>", "event": normalise_event(mine[0]["event"]), "metadata": metadata}
        bulk = {**envelope, "id": "<id>", "entries": [entry]}
    else:
        bulk = None
        envelope = normalise_event(envelope)
    headers = {k: v for k, v in delivery["headers"].items()
               if k in ("content-type", "pubsubname", "topic", "user-agent") or k.startswith("ce-")}
    return {"method": delivery["method"], "path": delivery["path"], "headers": headers,
            "envelope": bulk if bulk is not None else envelope}


def normalise_event(envelope: dict[str, Any]) -> dict[str, Any]:
    envelope = dict(envelope)
    for key in VOLATILE & set(envelope):
        envelope[key] = f"<{key}>"
    data = envelope["data"]
    data["task_id"] = data["task_data"]["id"] = "<task-id>"
    envelope["subject"] = "<task-id>"
    data["user_id"] = envelope["partitionkey"] = "<user>"
    for key in ("timestamp",):
        data[key] = f"<{key}>"
    for key in ("created_at", "updated_at"):
        data["task_data"][key] = f"<{key}>"
    return envelope


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "bulk"])
def test_daprd_delivery_matches_the_golden_envelope(
        stack: Stack, api: Callable[..., httpx.Response], user: str, tmp_path: Path, bulk: bool) -> None:
    app_port, http_port, grpc_port, internal, metrics = (ports.test_port(n) for n in range(5))
    captured = tmp_path / "captured.jsonl"
    env = stack.env_for("capture")
    stack._spawn("capture", [sys.executable, "-c", CAPTURE_APP, str(app_port), str(captured)], env)
    stack._wait_http(f"http://127.0.0.1:{app_port}/healthz", "capture", expect=(200,))
    stack._spawn("capture.daprd", [
        str(CACHE / "bin" / "daprd"), "--app-id", "capture", "--app-port", str(app_port),
        "--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc_port),
        "--dapr-internal-grpc-port", str(internal), "--metrics-port", str(metrics),
        "--resources-path", str(capture_resources(tmp_path / "resources", bulk)), "--log-as-json",
        "--dapr-listen-addresses", "127.0.0.1"], env)
    try:
        stack._wait_http(f"http://127.0.0.1:{http_port}/v1.0/healthz", "capture.daprd", expect=(204,))
        assert api("POST", "/tasks", user, json={"title": "golden", "tags": ["g"]}).status_code == 201

        def delivered() -> dict[str, Any]:
            lines = captured.read_text().splitlines() if captured.exists() else []
            mine = [json.loads(line) for line in lines if user in line]
            assert mine
            return dict(mine[0])

        delivery = normalise(eventually(delivered, timeout=90), user)
    finally:
        stack.stop("capture.daprd")
        stack.stop("capture")
    if os.environ.get("TODO_UPDATE_GOLDEN") == "1" or not GOLDEN[bulk].exists():
        GOLDEN[bulk].write_text(json.dumps(delivery, indent=2, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN[bulk].read_text())
    assert delivery["envelope"] == golden["envelope"]
    assert delivery["headers"]["content-type"] == golden["headers"]["content-type"]
    assert (delivery["method"], delivery["path"]) == (golden["method"], golden["path"])
