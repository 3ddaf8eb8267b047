"""The embedded gateway serves the web client at / beside the API, and offers the developer sign-in
only when it signs with its own generated secret."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from todo.adapters.migrate import upgrade
from todo.edge.auth import TokenVerifier
from todo.gateway import build_app
from todo.runtime import Runtime
from todo.settings import Settings


def test_the_gateway_serves_the_page_and_its_assets_beside_the_api(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/tasks").status_code == 401  # the API is still the API


def test_with_a_configured_secret_the_developer_sign_in_does_not_exist(client: TestClient) -> None:
    assert 'name="todo-dev-sign-in" content="off"' in client.get("/").text
    for method in ("GET", "POST"):
        response = client.request(method, "/dev/sign-in", json={"sub": "mallory"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_with_the_generated_secret_the_developer_sign_in_mints_tokens_the_api_takes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, outbox_sweep_seconds=3600.0)  # no secret: the embedded default
    runtime = Runtime(settings)
    upgrade(runtime.engine)
    with TestClient(build_app(runtime), client=("127.0.0.1", 40000)) as client:
        assert 'name="todo-dev-sign-in" content="on"' in client.get("/").text
        token = client.post("/dev/sign-in", json={"sub": "dana", "roles": ["auditor"]}).json()["token"]
        assert TokenVerifier(settings).verify(token).roles == {"user", "auditor"}
        auth = {"Authorization": f"Bearer {token}"}
        assert client.post("/tasks", json={"title": "from the page"}, headers=auth).status_code == 201
        assert client.get("/audit/verify", headers=auth).status_code == 200
