"""Reading the database URL and JWT secret from a Dapr secret store (the real one: tests/system)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from todo.adapters.secrets import with_store_secrets
from todo.settings import ConfigError, Settings
from todo_dev import ports

STORE = {"TODO_DATABASE_URL": "postgresql+pg8000://todo@db/todo", "TODO_JWT_SECRET": "s" * 48}


@pytest.fixture
def sidecar_port(httpserver: HTTPServer) -> int:
    """A stand-in for daprd's secrets API (GET /v1.0/secrets/<store>/<name>)."""
    def answer(request: Request) -> Response:
        store, name = request.path.removeprefix("/v1.0/secrets/").split("/", 1)
        if store != "envstore" or name not in STORE:
            return Response(status=500)  # what daprd answers for an unknown secret
        return Response(json.dumps({name: STORE[name]}), content_type="application/json")

    httpserver.expect_request(re.compile(r"^/v1\.0/secrets/")).respond_with_handler(answer)
    return int(httpserver.port)


def test_missing_secrets_come_from_the_store(tmp_path: Path, sidecar_port: int) -> None:
    given = Settings(data_dir=tmp_path, secret_store="envstore", dapr_http_port=sidecar_port)
    assert not given.embedded
    got = with_store_secrets(given)
    assert (got.database_url, got.jwt_secret) == (STORE["TODO_DATABASE_URL"], STORE["TODO_JWT_SECRET"])


def test_values_already_given_are_kept(tmp_path: Path, sidecar_port: int) -> None:
    given = Settings(data_dir=tmp_path, secret_store="envstore", dapr_http_port=sidecar_port, jwt_secret="mine")
    assert with_store_secrets(given).jwt_secret == "mine"


def test_an_unknown_store_or_secret_is_a_configuration_error(tmp_path: Path, sidecar_port: int) -> None:
    with pytest.raises(ConfigError, match="not found"):
        with_store_secrets(Settings(data_dir=tmp_path, secret_store="vault", dapr_http_port=sidecar_port))


def test_no_sidecar_is_a_configuration_error_after_waiting(tmp_path: Path) -> None:
    free = ports.test_port(69)  # nothing of this run listens there
    with pytest.raises(ConfigError, match="no Dapr sidecar"):
        with_store_secrets(Settings(data_dir=tmp_path, secret_store="envstore", dapr_http_port=free), 0.5)
