"""The pictures of docs/screenshots/, taken here rather than by hand: `make screenshots` runs this test
with TODO_SCREENSHOTS_DIR=docs/screenshots; in `make test` they go to a temporary folder, so the screens
are still visited and must render."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.test_embedded_server import Server

from .harness import PHONE, Signer, Tab, sign_in

pytestmark = pytest.mark.browser

SCREENS = ["sign-in", "tasks", "editor", "history", "notifications", "audit", "phone-tasks", "phone-editor"]


def seed(signer: Signer, server: Server, user: str) -> None:
    tasks = [
        {"title": "Pay rent", "priority": "high", "tags": ["home", "bills"], "due_at": "2027-02-01T09:00:00+01:00",
         "timezone": "Europe/Paris", "recurrence": {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1"},
         "reminders": [{"before": "P1D"}]},
        {"title": "Team stand-up", "tags": ["work"], "due_at": "2027-01-18T09:30:00+01:00", "timezone": "Europe/Paris",
         "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"}},
        {"title": "Renew passport", "priority": "medium", "tags": ["admin"], "due_at": "2027-03-10T12:00:00+01:00",
         "description": "Photos first; the form is on the prefecture's site."},
        {"title": "Water the plants", "priority": "low", "tags": ["home"], "due_at": "2027-01-20T18:00:00+01:00",
         "timezone": "Europe/Paris", "recurrence": {"rrule": "FREQ=DAILY;INTERVAL=3", "anchor": "completion"}},
        {"title": "Read “Designing Data-Intensive Applications”", "priority": "low", "tags": ["books"]},
    ]
    with signer.api(server.url, user) as api:
        ids = [api.post("/tasks", json=t).json()["id"] for t in tasks]
        api.patch(f"/tasks/{ids[2]}", json={"priority": "high"},
                  headers={"Content-Type": "application/merge-patch+json"})
        api.put("/me/notifications", json={"in_app": True, "email": "ana@example.com",
                                           "webhooks": [{"url": "https://hooks.example.com/todo"}]})


def test_screenshots_of_the_main_screens(tabs: Callable[..., Tab], signer: Signer, server: Server,
                                         tmp_path: Path) -> None:
    out = Path(os.environ.get("TODO_SCREENSHOTS_DIR") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    user = "ana"
    seed(signer, server, user)
    options = {"timezone_id": "Europe/Paris", "locale": "en-GB", "color_scheme": "light"}

    tab = tabs(**options)
    page = tab.page
    tab.open("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.screenshot(path=str(out / "sign-in.png"))
    sign_in(tab, signer.token(user, ["auditor"]))
    page.get_by_text("Filters and sort").click()
    page.screenshot(path=str(out / "tasks.png"), full_page=True)
    page.get_by_role("button", name="Edit: Pay rent").click()
    expect(page.locator("#editor")).to_be_visible()
    page.screenshot(path=str(out / "editor.png"))
    page.locator("#editor").get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="History: Renew passport").click()
    expect(page.locator("#history-list > li")).to_have_count(2)
    page.screenshot(path=str(out / "history.png"))
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Notifications").click()
    expect(page.locator("#webhook-list .secret code")).to_be_visible()
    page.screenshot(path=str(out / "notifications.png"))
    page.get_by_role("button", name="Audit").click()
    page.locator("#audit-form").get_by_role("button", name="Search").click()
    expect(page.locator("#audit-list > li").first).to_be_visible()
    page.locator("#audit-form").get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("intact")
    page.screenshot(path=str(out / "audit.png"))

    phone = tabs(viewport=PHONE, **options)
    sign_in(phone, signer.token(user))
    phone.page.screenshot(path=str(out / "phone-tasks.png"), full_page=True)
    phone.page.get_by_role("button", name="New task").click()
    phone.page.locator("#editor").get_by_label("Repeats").select_option("weekly")
    phone.page.screenshot(path=str(out / "phone-editor.png"))
    phone.page.locator("#editor").get_by_role("button", name="Cancel").click()

    for name in SCREENS:
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000, name
