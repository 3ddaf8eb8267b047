"""A task's history, the notification settings (email, webhooks with their signing secret), and for an
auditor the audit search and the chain verification."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_embedded_server import Server

from .harness import Signer, Tab, eventually, sign_in

pytestmark = pytest.mark.browser


def test_a_tasks_history_lists_its_audit_trail(signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    with signer.api(server.url, user) as api:
        task_id = api.post("/tasks", json={"title": "Book flights", "priority": "low"}).json()["id"]
        api.patch(f"/tasks/{task_id}", json={"title": "Book flights to Rome", "priority": "high"},
                  headers={"Content-Type": "application/merge-patch+json"})
        api.post(f"/tasks/{task_id}/complete")
        # 404 until audit-sink has recorded the task: wait for its three entries.
        eventually(lambda: len(api.get(f"/tasks/{task_id}/history").json().get("items", [])) == 3)
    page.get_by_text("Filters and sort").click()
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="History: Book flights to Rome").click()
    history = page.locator("#history")
    expect(history.get_by_role("heading")).to_have_text("History of “Book flights to Rome”")
    entries = history.locator("#history-list > li")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("task.created")
    expect(entries.nth(0)).to_contain_text("created “Book flights”")
    expect(entries.nth(1)).to_contain_text("task.updated")
    expect(entries.nth(1)).to_contain_text("title: Book flights → Book flights to Rome")
    expect(entries.nth(1)).to_contain_text("priority: low → high")
    expect(entries.nth(2)).to_contain_text("task.completed")
    expect(entries.nth(2)).to_contain_text(f"by {user}")
    expect(history.get_by_role("button", name="Close")).to_be_focused()
    page.keyboard.press("Escape")
    expect(history).to_be_hidden()


def test_notification_settings_email_and_webhooks_with_their_secret(
        signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    signed_in.allow("status of 422")
    page = signed_in.page
    page.get_by_role("button", name="Notifications").click()
    form = page.locator("#settings-form")
    expect(form.get_by_label("In the app (this page)")).to_be_checked()
    form.get_by_label("Email").fill("not-an-address")
    form.get_by_role("button", name="Add a webhook").click()
    form.get_by_label("Webhook URL").fill("ftp://example.com/hook")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#s-email-error")).to_contain_text("not an email address")
    expect(form.locator("[data-error-for='webhooks.0']")).to_contain_text("should match pattern")

    form.get_by_label("Email").fill("me@example.com")
    form.get_by_label("Webhook URL").fill("https://example.com/hooks/todo")
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#notices")).to_contain_text("Notification settings saved.")
    secret = form.locator(".secret code")
    expect(secret).to_have_text(re.compile(r"^whsec_[A-Za-z0-9+/=]{32,}$"))
    kept = secret.inner_text()

    with signer.api(server.url, user) as api:
        stored = api.get("/me/notifications").json()
    assert stored == {"in_app": True, "email": "me@example.com",
                      "webhooks": [{"url": "https://example.com/hooks/todo", "secret": kept}]}

    page.reload()  # the secret is kept across saves, not made anew
    page.get_by_role("button", name="Notifications").click()
    expect(form.locator(".secret code")).to_have_text(kept)
    form.get_by_label("In the app (this page)").uncheck()
    form.get_by_role("button", name="Save").click()
    expect(page.locator("#notices")).to_contain_text("Notification settings saved.")
    with signer.api(server.url, user) as api:
        again = api.get("/me/notifications").json()
    assert again["in_app"] is False and again["webhooks"][0]["secret"] == kept


def test_an_auditor_searches_the_audit_trail_and_verifies_the_chain(
        tab: Tab, signer: Signer, server: Server, user: str) -> None:
    with signer.api(server.url, user) as api:
        task_id = api.post("/tasks", json={"title": "Audited thing"}).json()["id"]
        api.delete(f"/tasks/{task_id}")
        eventually(lambda: len(api.get(f"/tasks/{task_id}/history").json().get("items", [])) == 2)
    sign_in(tab, signer.token("auditor-ann", ["auditor"]))
    page = tab.page
    page.get_by_role("button", name="Audit").click()
    form = page.locator("#audit-form")
    form.get_by_label("User").fill(user)
    form.get_by_label("Action").select_option("task.deleted")
    form.get_by_role("button", name="Search").click()
    entries = page.locator("#audit-list > li")
    expect(entries).to_have_count(1)
    expect(entries).to_contain_text(f"task.deleted task {task_id} by {user}")
    form.get_by_label("Action").select_option("")
    form.get_by_role("button", name="Search").click()
    expect(entries).to_have_count(2)
    form.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_have_text(
        re.compile(r"^The trail is intact: \d+ entries on \d+ chains checked; checkpoint [0-9a-f]{16}"))


def test_without_the_auditor_role_there_is_no_audit_section(signed_in: Tab) -> None:
    expect(signed_in.page.get_by_role("button", name="Notifications")).to_be_visible()
    expect(signed_in.page.get_by_role("button", name="Audit")).to_be_hidden()
