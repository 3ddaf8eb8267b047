"""The web client on the real stack: `todo proxy` serves the page and the API, and a change made through
the API reaches the page live (create-task's outbox → daprd → Kafka task-updates → push-update → /ws).
One base URL: the page, the API and /ws all go through the gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.harness import Signer, Tab, chromium, new_tab, screenshot_on_failure, sign_in
from todo_dev.stack import Stack

from .conftest import SECRET

pytestmark = [pytest.mark.system, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def site(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.gateway_port}"


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
