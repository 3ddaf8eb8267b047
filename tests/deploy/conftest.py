"""The deployment as committed, loaded once; tests that break it work on copies."""

from __future__ import annotations

import pytest

from todo_dev import deploy

from .checks import Manifests, load


@pytest.fixture(scope="session")
def manifests() -> Manifests:
    return load()


@pytest.fixture(scope="session")
def project() -> deploy.Project:
    return deploy.Project()


@pytest.fixture
def broken(manifests: Manifests) -> Manifests:
    """A copy to break on purpose."""
    return manifests.copy()
