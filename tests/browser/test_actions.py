"""Complete, reopen, skip, snooze and delete, with the instance/series choice where it applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.test_embedded_server import Server

from .harness import Signer, Tab, eventually

pytestmark = pytest.mark.browser


def tasks_of(signer: Signer, server: Server, user: str, status: str = "all") -> list[dict[str, Any]]:
    with signer.api(server.url, user) as api:
        return api.get("/tasks", params={"status": status, "sort": "due_at"}).json()["items"]  # type: ignore[no-any-return]


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()


def test_complete_and_reopen(signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    with signer.api(server.url, user) as api:
        api.post("/tasks", json={"title": "Call the bank"})
    page.get_by_role("button", name="Complete: Call the bank").click()
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")
    expect(page.locator("#notices")).to_contain_text("Completed “Call the bank”.")
    assert [t["status"] for t in tasks_of(signer, server, user)] == ["completed"]
    page.get_by_text("Filters and sort").click()
    page.get_by_label("Status").select_option("completed")
    expect(page.locator("#task-list .task-meta")).to_contain_text("done")
    page.get_by_role("button", name="Reopen: Call the bank").click()
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")
    assert [t["status"] for t in tasks_of(signer, server, user)] == ["open"]


def test_skip_closes_this_instance_and_the_next_one_follows(
        signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    with signer.api(server.url, user) as api:
        api.post("/tasks", json={"title": "Gym", "due_at": tomorrow(), "recurrence": {"rrule": "FREQ=DAILY"}})
    expect(page.get_by_role("button", name="Skip: Gym")).to_be_visible()
    first_due = page.locator("#task-list .task-meta").inner_text()
    page.get_by_role("button", name="Skip: Gym").click()
    # on-task-event creates the next instance; the page hears of it on its socket.
    expect(page.locator("#task-list .task-meta")).not_to_have_text(first_due)
    expect(page.locator("#task-list .task")).to_have_count(1)
    items = eventually(lambda: len(tasks_of(signer, server, user)) == 2 and tasks_of(signer, server, user))
    assert [(t["series"]["occurrence"], t["status"], t["skipped"]) for t in items] == [
        (1, "completed", True), (2, "open", False)]


def test_snooze_plans_a_reminder_again_later(signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    with signer.api(server.url, user) as api:
        api.post("/tasks", json={"title": "Reply to Sam", "due_at": tomorrow()})
    page.get_by_role("button", name="Snooze: Reply to Sam").click()
    snooze = page.locator("#snooze")
    expect(snooze).to_be_visible()
    snooze.get_by_label("in an hour").check()
    snooze.get_by_role("button", name="Snooze").click()
    expect(snooze).to_be_hidden()
    expect(page.locator("#notices")).to_contain_text("You will be reminded of “Reply to Sam”")
    # The panel shows the trail as it is when opened; audit-sink records the plan a moment after the
    # snooze answers, so open it once the entry is there.
    with signer.api(server.url, user) as api:
        task_id = tasks_of(signer, server, user)[0]["id"]
        eventually(lambda: any(e["action"].startswith("reminder.")
                               for e in api.get(f"/tasks/{task_id}/history").json().get("items", [])))
    page.get_by_role("button", name="History: Reply to Sam").click()
    expect(page.locator("#history-list")).to_contain_text("reminder planned")


def test_delete_a_task(signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    with signer.api(server.url, user) as api:
        api.post("/tasks", json={"title": "Old idea"})
    page.get_by_role("button", name="Delete: Old idea").click()
    dialog = page.locator("#confirm-delete")
    expect(dialog.get_by_role("button", name="Delete the whole series")).to_be_hidden()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    dialog.get_by_role("button", name="Cancel").click()
    assert len(tasks_of(signer, server, user)) == 1
    page.get_by_role("button", name="Delete: Old idea").click()
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")
    assert tasks_of(signer, server, user) == []


def test_delete_an_instance_or_the_whole_series(signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    with signer.api(server.url, user) as api:
        api.post("/tasks", json={"title": "Water plants", "due_at": tomorrow(), "recurrence": {"rrule": "FREQ=WEEKLY"}})
    dialog = page.locator("#confirm-delete")
    page.get_by_role("button", name="Delete: Water plants").click()
    expect(dialog).to_contain_text("repeats")
    dialog.get_by_role("button", name="Delete this one").click()
    # The series goes on: the next instance arrives.
    eventually(lambda: [t["series"]["occurrence"] for t in tasks_of(signer, server, user, "open")] == [2])
    expect(page.locator("#task-list .task-title")).to_have_text(["Water plants"])

    page.get_by_role("button", name="Delete: Water plants").click()
    dialog.get_by_role("button", name="Delete the whole series").click()
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")
    # Events are delivered in commit order, to every subscriber before the next event: once a task
    # created after the deletion is in the audit trail, on-task-event has seen the deletion too.
    with signer.api(server.url, user) as api:
        marker = api.post("/tasks", json={"title": "marker"}).json()["id"]
        # Until the audit consumer has the marker's first entry, its history is not found (404).
        eventually(lambda: api.get(f"/tasks/{marker}/history").status_code == 200)
    assert [t["title"] for t in tasks_of(signer, server, user)] == ["marker"]
