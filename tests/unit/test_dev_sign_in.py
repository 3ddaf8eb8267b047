"""The developer sign-in: only on the embedded default signing with its generated secret, only for
loopback clients, and its tokens are ordinary tokens of this server."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from todo.edge.auth import TokenVerifier
from todo.edge.dev_sign_in import PATH, available, dev_sign_in_routes
from todo.settings import Settings

LOOPBACK = ("127.0.0.1", 40000)


def client_for(settings: Settings, client: tuple[str, int] = LOOPBACK) -> TestClient:
    return TestClient(Starlette(routes=dev_sign_in_routes(settings)), client=client)


def test_it_is_offered_only_with_the_generated_development_secret(tmp_path: Path) -> None:
    generated = Settings(data_dir=tmp_path)
    assert available(generated)
    assert not available(generated.with_(jwt_secret="configured-" + "x" * 32))
    assert not available(generated.with_(jwt_jwks_url="https://id.example.com/jwks.json"))
    assert not available(generated.with_(database_url="postgresql+pg8000://todo@db/todo", jwt_secret="s" * 40))
    assert not available(generated.with_(secret_store="secretstore"))


def test_with_a_configured_secret_or_jwks_the_route_does_not_exist(tmp_path: Path) -> None:
    assert dev_sign_in_routes(Settings(data_dir=tmp_path, jwt_secret="configured-" + "x" * 32)) == []
    assert dev_sign_in_routes(Settings(data_dir=tmp_path, jwt_jwks_url="https://id.example.com/jwks.json")) == []


def test_it_mints_a_token_this_server_accepts_with_the_chosen_roles(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    response = client_for(settings).post(PATH, json={"sub": "  carol ", "roles": ["auditor", "auditor"]})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    principal = TokenVerifier(settings).verify(response.json()["token"])
    assert principal.user_id == "carol"
    assert principal.roles == {"user", "auditor"}


def test_get_describes_the_roles_to_choose_from(tmp_path: Path) -> None:
    assert client_for(Settings(data_dir=tmp_path)).get(PATH).json()["roles"] == ["admin", "auditor", "user"]


@pytest.mark.parametrize(("body", "field"), [
    ({"sub": ""}, "sub"),
    ({"sub": "x" * 256}, "sub"),
    ({"sub": "dave", "roles": ["root"]}, "roles.0"),
    ({"sub": "dave", "extra": 1}, "extra"),
    ({}, "sub"),
])
def test_invalid_choices_are_field_problems(tmp_path: Path, body: dict[str, object], field: str) -> None:
    response = client_for(Settings(data_dir=tmp_path)).post(PATH, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_a_form_post_malformed_json_or_another_method_are_refused_as_problems(tmp_path: Path) -> None:
    client = client_for(Settings(data_dir=tmp_path))
    assert client.post(PATH, data={"sub": "eve"}).status_code == 415  # what a cross-site form can send
    malformed = client.post(PATH, content=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400
    wrong = client.put(PATH, json={"sub": "eve"})
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, POST")
    assert wrong.headers["content-type"] == "application/problem+json"


def test_a_client_off_this_machine_gets_no_token(tmp_path: Path) -> None:
    response = client_for(Settings(data_dir=tmp_path), client=("192.0.2.7", 40000)).post(PATH, json={"sub": "mallory"})
    assert response.status_code == 403
    assert "token" not in response.json()
