"""Serving, the Content-Security-Policy as Chromium enforces it, the two ways to sign in, and where the
token goes (memory and sessionStorage; never a URL or localStorage)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.test_embedded_server import Server

from .conftest import start_server
from .harness import Signer, Tab, new_tab, sign_in

pytestmark = pytest.mark.browser


def test_the_page_and_its_assets_are_served_with_types_caching_and_the_policy(tab: Tab, server: Server) -> None:
    responses: dict[str, httpx.Headers] = {}
    tab.page.on("response", lambda r: responses.__setitem__(r.url, httpx.Headers(r.headers)))
    # Chromium fetches the icon after the page is shown, so the test waits for that response itself.
    with tab.page.expect_response(lambda r: r.url.endswith("/favicon.svg")):
        tab.open("/")
    expect(tab.page.get_by_role("heading", name="Sign in")).to_be_visible()
    page = responses[server.url + "/"]
    assert page["content-type"] == "text/html; charset=utf-8" and page["cache-control"] == "no-cache"
    assert "script-src 'self'" in page["content-security-policy"]
    assets = {url: h for url, h in responses.items() if "/assets/" in url}
    kinds = {re.sub(r".*\.", "", url): h["content-type"] for url, h in assets.items()}
    assert kinds == {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8", "svg": "image/svg+xml"}
    assert all(h["cache-control"] == "public, max-age=31536000, immutable" for h in assets.values())
    assert len({re.search(r"/assets/(\w+)/", url).group(1) for url in assets}) == 1  # type: ignore[union-attr]


def test_chromium_enforces_the_policy_no_inline_script_handlers_or_html_sinks(signed_in: Tab) -> None:
    signed_in.allow("Content Security Policy|Trusted Type|TrustedHTML|TrustedScript")
    page = signed_in.page
    # (Playwright's own evaluate is exempt from the page's CSP, so eval is not tried here: the policy
    # has no 'unsafe-eval', tests/unit/test_web_static.py, and the sources use none, test_web_sources.py.)
    outcome = page.evaluate("""() => {
        const out = {};
        try { document.body.innerHTML += "<b>x</b>"; out.html = "assigned"; } catch (e) { out.html = e.name; }
        const b = document.createElement("button");
        try { b.setAttribute("onclick", "window.__pwned = true"); } catch (e) { out.attribute = e.name; }
        document.body.append(b); b.click(); b.remove();
        out.handler = window.__pwned === true ? "ran" : "blocked";
        return out;
    }""")
    assert outcome == {"html": "TypeError", "attribute": "TypeError", "handler": "blocked"}
    with contextlib.suppress(Exception):  # Playwright may report the refused tag as an error
        page.add_script_tag(content="window.__inline = true")
    assert page.evaluate("() => window.__inline === undefined")
    assert any("Content Security Policy" in e or "Trusted" in e for e in signed_in.errors)


def test_developer_sign_in_on_the_embedded_default_gives_the_chosen_user_and_roles(tab: Tab) -> None:
    tab.open("/")
    page = tab.page
    page.get_by_label("User name").fill("dana")
    page.get_by_label("auditor").check()
    page.get_by_role("button", name="Developer sign-in").click()
    expect(page.get_by_text("Signed in as dana")).to_be_visible()
    expect(page.get_by_role("button", name="Audit")).to_be_visible()
    expect(page.locator("#live-state")).to_have_text("live")


def test_developer_sign_in_shows_the_api_field_errors(tab: Tab) -> None:
    tab.allow("status of 422")
    tab.open("/")
    tab.page.get_by_role("button", name="Developer sign-in").click()
    expect(tab.page.locator("#dev-sub-error")).to_contain_text("at least 1 character")
    expect(tab.page.get_by_label("User name")).to_have_attribute("aria-invalid", "true")


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Signer]]:
    """The embedded default with a configured secret: no developer sign-in."""
    server, signer = start_server(tmp_path_factory.mktemp("configured") / "data",
                                  TODO_JWT_SECRET="configured-secret-" + "c" * 32)
    yield server, signer
    server.kill()


def test_with_a_configured_secret_there_is_no_developer_sign_in_only_the_token(
        browser: Browser, configured: tuple[Server, Signer], tabs: Callable[..., Tab]) -> None:
    server, signer = configured
    assert httpx.post(f"{server.url}/dev/sign-in", json={"sub": "mallory"}).status_code == 404
    assert httpx.get(f"{server.url}/dev/sign-in").status_code == 404
    tab = tabs(base_url=server.url)
    tab.open("/")
    expect(tab.page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(tab.page.get_by_role("button", name="Developer sign-in")).to_be_hidden()
    sign_in(tab, signer.token("erin"))
    expect(tab.page.get_by_text("Signed in as erin")).to_be_visible()


def test_a_refused_token_is_reported_beside_the_field(tab: Tab) -> None:
    tab.allow("status of 401")
    tab.open("/")
    tab.page.get_by_label("Bearer token").fill("not-a-token")
    tab.page.get_by_role("button", name="Sign in", exact=True).click()
    expect(tab.page.locator("#token-error")).to_contain_text("Not signed in")
    expect(tab.page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_token_stays_in_session_storage_and_headers_never_in_urls_or_local_storage(
        tab: Tab, signer: Signer, user: str, browser: Browser, server: Server) -> None:
    token = signer.token(user)
    sign_in(tab, token)
    page = tab.page
    assert page.evaluate("() => sessionStorage.getItem('todo.token')") == token
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("() => document.cookie") == ""
    assert tab.sockets and all("/ws?since=" in url for url in tab.sockets)
    assert not [url for url in tab.requests + tab.sockets if token in url or "ticket=" in url]

    page.reload()  # the same tab keeps its session
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    assert page.evaluate("() => sessionStorage.length") == 0
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    other = new_tab(browser, server.url)  # another browser context has no session of this one
    try:
        sign_in_page = other.page
        other.open("/")
        expect(sign_in_page.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        other.context.close()


def test_an_expired_session_returns_to_sign_in(tab: Tab, signer: Signer, user: str) -> None:
    tab.allow("status of 401")
    tab.open("/")
    tab.page.get_by_label("Bearer token").fill(signer.token(user, ttl=5))
    tab.page.get_by_role("button", name="Sign in", exact=True).click()
    # The socket closes (1008) when the token expires; the page asks to sign in again.
    expect(tab.page.locator("#token-error")).to_contain_text("session has ended", timeout=40_000)
    expect(tab.page.get_by_label("Bearer token")).to_be_focused()
    assert tab.sockets  # it had signed in and opened its live feed
    assert tab.page.evaluate("() => sessionStorage.length") == 0
