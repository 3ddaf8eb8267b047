from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from todo.gateway import build_app
from todo.runtime import Runtime


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(build_app(runtime), raise_server_exceptions=True) as client:
        yield client


class Api:
    """A caller with a token: ``api.post("/tasks", json=...)``."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __getattr__(self, method: str):  # type: ignore[no-untyped-def]
        def call(path: str, **kwargs):  # type: ignore[no-untyped-def]
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return self.client.request(method.upper(), path, headers=headers, **kwargs)

        return call


@pytest.fixture
def alice(client: TestClient, token) -> Api:  # type: ignore[no-untyped-def]
    return Api(client, token("alice"))


@pytest.fixture
def bob(client: TestClient, token) -> Api:  # type: ignore[no-untyped-def]
    return Api(client, token("bob"))
