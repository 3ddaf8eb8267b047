"""The web client on the real stack: `todo proxy` serves the page and the API, and a change made through
the API reaches the page live (create-task's outbox → daprd → Kafka task-updates → push-update → /ws).

Until the gateway passes WebSockets through (issue 12, point 4), the page's /ws is taken to push-update's
own port by a relay in front of the gateway: everything else the browser sends still goes to `todo proxy`.
Once the gateway answers the upgrade itself, the test uses it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect
from todo_dev import ports
from todo_dev.stack import Stack
from websockets.exceptions import InvalidHandshake
from websockets.sync.client import connect

from tests.browser.harness import Relay, Signer, Tab, chromium, new_tab, screenshot_on_failure, sign_in

from .conftest import SECRET

pytestmark = [pytest.mark.system, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def gateway_passes_websockets(stack: Stack, token: str) -> bool:
    # The sync client: Playwright's sync API holds this thread's event loop, so asyncio.run would fail.
    try:
        with connect(f"ws://127.0.0.1:{stack.gateway_port}/ws", subprotocols=["bearer", token],  # type: ignore[list-item]
                     open_timeout=5):
            return True
    except (OSError, InvalidHandshake, TimeoutError):
        return False


@pytest.fixture
def site(stack: Stack) -> Iterator[str]:
    """The URL the browser opens: the gateway, or the relay in front of it (see the module docstring)."""
    if gateway_passes_websockets(stack, Signer(SECRET).token("probe")):
        yield f"http://127.0.0.1:{stack.gateway_port}"
        return
    print("the gateway does not pass /ws through yet: the relay takes /ws to push-update")
    relay = Relay(ports.test_port(32), ("127.0.0.1", stack.gateway_port),
                  websocket=("127.0.0.1", stack.ports("push-update").app))
    relay.start()
    try:
        yield relay.url
    finally:
        relay.stop()


@pytest.fixture
def tab(browser: Browser, site: str) -> Iterator[Tab]:
    tab = new_tab(browser, site)
    yield tab
    tab.context.close()


def test_the_gateway_serves_the_page_and_changes_reach_it_live_through_kafka(
        stack: Stack, tab: Tab, user: str, api: Callable[..., httpx.Response]) -> None:
    gateway = f"http://127.0.0.1:{stack.gateway_port}"
    page = httpx.get(gateway + "/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert 'name="todo-dev-sign-in" content="off"' in page.text  # a configured secret: no developer sign-in

    try:
        tab.open("/")
        expect(tab.page.get_by_role("button", name="Developer sign-in")).to_be_hidden()
        sign_in(tab, Signer(SECRET).token(user))
        assert api("POST", "/tasks", user=user, json={"title": "Sent through Kafka"}).status_code == 201
        expect(tab.page.locator("#task-list .task-title")).to_have_text(["Sent through Kafka"], timeout=30_000)

        tab.page.get_by_role("button", name="Complete: Sent through Kafka").click()
        expect(tab.page.locator("#list-summary")).to_have_text("No tasks match.")
        done = api("GET", "/tasks", user=user, params={"status": "completed"}).json()["items"]
        assert [t["title"] for t in done] == ["Sent through Kafka"]
        assert tab.unexpected_errors() == []
    except BaseException:
        print(f"screenshot: {screenshot_on_failure(tab, 'system-web')}")
        raise
