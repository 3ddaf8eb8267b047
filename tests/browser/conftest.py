"""The browser tier: the web client in a real headless Chromium against `todo serve`, the embedded
default as a person runs it. One server and one browser for the package; a fresh browser context
(and user) for each test. A failing test leaves a screenshot in build/test-artifacts/browser/, and a
test fails when the page wrote an error to its console that the test did not expect."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.e2e.test_embedded_server import Server

from .harness import DESKTOP, Signer, Tab, chromium, new_tab, screenshot_on_failure, sign_in


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def start_server(data_dir: Path, **env: str) -> tuple[Server, Signer]:
    server = Server(data_dir)
    server.env.update(env)
    server.start()
    server.todo("token", "--sub", "warm-up")  # the embedded default writes its secret on first use
    secret = env.get("TODO_JWT_SECRET") or (data_dir / "jwt-secret").read_text().strip()
    return server, Signer(secret)


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Signer]]:
    """The embedded default with its generated development secret (developer sign-in offered)."""
    server, signer = start_server(tmp_path_factory.mktemp("web") / "data")
    yield server, signer
    server.kill()


@pytest.fixture
def server(served: tuple[Server, Signer]) -> Server:
    return served[0]


@pytest.fixture
def signer(served: tuple[Server, Signer]) -> Signer:
    return served[1]


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tabs(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Callable[..., Tab]]:
    """Open tabs, each in its own context: ``tab = tabs()``, ``tabs(viewport=PHONE, base_url=…)``."""
    opened: list[Tab] = []

    def open_tab(base_url: str | None = None, viewport: dict[str, int] = DESKTOP, **options: object) -> Tab:
        tab = new_tab(browser, base_url or server.url, viewport, **options)
        opened.append(tab)
        return tab

    yield open_tab
    failed = any(getattr(request.node, f"report_{when}", None) is not None
                 and getattr(request.node, f"report_{when}").failed for when in ("setup", "call"))
    try:
        if failed:
            for i, tab in enumerate(opened):
                path = screenshot_on_failure(tab, f"{request.node.nodeid}-{i}")
                print(f"screenshot: {path}")
        else:
            for tab in opened:
                assert tab.unexpected_errors() == [], "the page logged errors to its console"
    finally:
        for tab in opened:
            tab.context.close()


@pytest.fixture
def tab(tabs: Callable[..., Tab]) -> Tab:
    return tabs()


@pytest.fixture
def signed_in(tab: Tab, signer: Signer, user: str) -> Tab:
    sign_in(tab, signer.token(user))
    return tab
