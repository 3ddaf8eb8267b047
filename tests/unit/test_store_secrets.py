"""Reading the database URL and JWT secret from a Dapr secret store (the real one: tests/system)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from todo.adapters.secrets import with_store_secrets
from todo.settings import ConfigError, Settings

STORE = {"TODO_DATABASE_URL": "postgresql+pg8000://todo@db/todo", "TODO_JWT_SECRET": "s" * 48}


@pytest.fixture
def sidecar_port() -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            store, name = self.path.removeprefix("/v1.0/secrets/").split("/", 1)
            if store != "envstore" or name not in STORE:
                self.send_response(500)  # what daprd answers for an unknown secret
                self.end_headers()
                return
            body = json.dumps({name: STORE[name]}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(ConfigError, match="no Dapr sidecar"):
        with_store_secrets(Settings(data_dir=tmp_path, secret_store="envstore", dapr_http_port=free), 0.5)
