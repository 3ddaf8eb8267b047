"""Works by keyboard alone, with labelled controls and visible focus, at 375 px and on a desktop:
axe-core finds no serious violation on any screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.e2e.test_embedded_server import Server

from .harness import PHONE, Signer, Tab, audited, sign_in

pytestmark = pytest.mark.browser

AXE = Axe()
SERIOUS = ("serious", "critical")


def serious_violations(page: Page) -> list[str]:
    results = AXE.run(page, options={"resultTypes": ["violations"]})
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v["impact"] in SERIOUS]


def seed(signer: Signer, server: Server, user: str) -> None:
    with signer.api(server.url, user) as api:
        rent = api.post("/tasks", json={"title": "Pay rent", "priority": "high", "tags": ["home", "bills"],
                                        "due_at": "2027-12-01T09:00:00+01:00", "timezone": "Europe/Paris",
                                        "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
                                        "reminders": [{"before": "PT1H"}]}).json()
        api.post("/tasks", json={"title": "Call the plumber about the kitchen sink that keeps dripping",
                                 "description": "Number is on the fridge", "tags": ["home"]})
        api.put("/me/notifications", json={"in_app": True, "webhooks": [{"url": "https://example.com/hook"}]})
        audited(api, rent["id"])


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "375px"])
def test_no_serious_accessibility_violations_on_any_screen(
        tabs: Callable[..., Tab], signer: Signer, server: Server, user: str, viewport: Any) -> None:
    seed(signer, server, user)
    tab = tabs(**({"viewport": viewport} if viewport else {}))
    page = tab.page
    found: dict[str, list[str]] = {}
    tab.open("/")
    found["sign-in"] = serious_violations(page)
    sign_in(tab, signer.token(user, ["auditor"]))
    page.get_by_text("Filters and sort").click()
    found["tasks"] = serious_violations(page)
    page.get_by_role("button", name="Edit: Pay rent").click()
    page.locator("#editor").get_by_label("Repeats").select_option("weekly")
    found["editor"] = serious_violations(page)
    page.locator("#editor").get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="History: Pay rent").click()
    expect(page.locator("#history-list > li").first).to_be_visible()
    found["history"] = serious_violations(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Delete: Pay rent").click()
    found["delete"] = serious_violations(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Notifications").click()
    expect(page.locator("#webhook-list li")).to_have_count(1)
    found["settings"] = serious_violations(page)
    page.get_by_role("button", name="Audit").click()
    page.locator("#audit-form").get_by_role("button", name="Search").click()
    expect(page.locator("#audit-list > li").first).to_be_visible()
    found["audit"] = serious_violations(page)
    assert found == {screen: [] for screen in found}


def focus_ring(page: Page) -> dict[str, str]:
    return page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return {style: s.outlineStyle, width: s.outlineWidth};
    }""")


def tab_to(page: Page, name: str, limit: int = 60) -> None:
    """Press Tab until the focused control is called ``name``; it must also show a focus ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        accessible = page.evaluate("""() => {
            const el = document.activeElement;
            if (!el) return "";
            const label = el.getAttribute("aria-label") || (el.labels && el.labels[0] && el.labels[0].textContent);
            return (label || el.textContent || "").trim();
        }""")
        if accessible == name:
            ring = focus_ring(page)
            assert ring["style"] != "none" and ring["width"] != "0px", f"no visible focus on {name}: {ring}"
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "375px"])
def test_everything_works_by_keyboard_alone_with_visible_focus(
        tabs: Callable[..., Tab], signer: Signer, user: str, viewport: Any) -> None:
    tab = tabs(**({"viewport": viewport} if viewport else {}))
    page = tab.page
    keys = page.keyboard
    tab.open("/")
    tab_to(page, "Bearer token")
    keys.insert_text(signer.token(user))
    tab_to(page, "Sign in")
    keys.press("Enter")
    expect(page.locator("#live-state")).to_have_text("live")

    tab_to(page, "New task")
    keys.press("Enter")
    expect(page.locator("#editor")).to_be_visible()
    expect(page.locator("#e-title")).to_be_focused()
    keys.type("Typed, never clicked")
    tab_to(page, "Priority")
    keys.press("ArrowUp")  # medium → high
    tab_to(page, "Tags (comma separated)")
    keys.type("keyboard")
    tab_to(page, "Save")
    keys.press("Enter")
    expect(page.locator("#editor")).to_be_hidden()
    expect(page.locator("#task-list .task-title")).to_have_text(["Typed, never clicked"])
    expect(page.locator("#task-list .task")).to_have_attribute("data-priority", "high")

    tab_to(page, "Snooze: Typed, never clicked")
    keys.press("Enter")
    expect(page.locator("#snooze")).to_be_visible()
    keys.press("Escape")
    expect(page.locator("#snooze")).to_be_hidden()

    tab_to(page, "Complete: Typed, never clicked")
    keys.press("Enter")
    expect(page.locator("#notices")).to_contain_text("Completed “Typed, never clicked”.")
    # The task left the open list with the focused button: focus goes to the list's heading, not to
    # the top of the page.
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")
    expect(page.locator("#tasks-title")).to_be_focused()

    keys.press("/")  # the search shortcut
    expect(page.locator("#f-q")).to_be_focused()
    keys.type("never")
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")


def test_at_375_px_nothing_overflows_and_every_control_is_on_screen(
        tabs: Callable[..., Tab], signer: Signer, server: Server, user: str) -> None:
    seed(signer, server, user)
    tab = tabs(viewport=PHONE)
    page = tab.page
    sign_in(tab, signer.token(user, ["auditor"]))

    def fits() -> None:
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide"
        outside = page.evaluate("""(limit) => [...document.querySelectorAll('button, input, select, textarea')]
            .filter((el) => el.offsetParent !== null)
            .map((el) => [el.id || el.getAttribute('aria-label') || el.textContent.trim(), el.getBoundingClientRect()])
            .filter(([, r]) => r.left < 0 || r.right > limit + 0.5)
            .map(([name]) => name)""", PHONE["width"])
        assert outside == []

    page.get_by_text("Filters and sort").click()
    fits()
    page.get_by_role("button", name="Edit: Pay rent").click()
    page.locator("#editor").get_by_label("Repeats").select_option("weekly")
    page.locator("#editor").get_by_role("button", name="Add a reminder").click()
    fits()
    page.locator("#editor").get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Notifications").click()
    fits()
    page.get_by_role("button", name="Audit").click()
    fits()
