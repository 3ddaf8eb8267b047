"""Seeing one's tasks: filters, full-text search, sort, tag counts, load more; and user text shown as text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_embedded_server import Server

from .harness import Signer, Tab, audited, sign_in

pytestmark = pytest.mark.browser


def titles(page: Page) -> list[str]:
    return page.locator("#task-list .task-title").all_inner_texts()


def settle(page: Page) -> None:
    """Wait until the list answers the current filters (the page debounces typing)."""
    page.wait_for_function("() => !document.querySelector('#list-summary:empty')")
    page.wait_for_load_state("networkidle")


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


@pytest.fixture
def seeded(signer: Signer, server: Server, user: str) -> dict[str, int]:
    now = datetime.now(UTC).replace(microsecond=0)
    tasks = [
        {"title": "Pay rent", "priority": "high", "tags": ["home", "bills"], "due_at": iso(now + timedelta(days=2))},
        {"title": "Water the plants", "priority": "low", "tags": ["home"], "due_at": iso(now + timedelta(days=20))},
        {"title": "Renew passport", "priority": "medium", "tags": ["admin"], "due_at": iso(now - timedelta(days=1)),
         "description": "The old one expired in March"},
        {"title": "Invoice client", "priority": "high", "tags": ["work", "bills"]},
        {"title": "Archive old mail", "priority": "low", "tags": ["work"]},
    ]
    ids = {}
    with signer.api(server.url, user) as api:
        for body in tasks:
            created = api.post("/tasks", json=body)
            assert created.status_code == 201, created.text
            ids[body["title"]] = created.json()["id"]
        assert api.post(f"/tasks/{ids['Archive old mail']}/complete").status_code == 200
    return ids


def test_filters_status_priority_tags_any_or_all_due_window_and_overdue(
        tab: Tab, signer: Signer, user: str, seeded: dict[str, int]) -> None:
    sign_in(tab, signer.token(user))
    page = tab.page
    assert sorted(titles(page)) == ["Invoice client", "Pay rent", "Renew passport", "Water the plants"]
    page.get_by_text("Filters and sort").click()

    page.get_by_label("Status").select_option("completed")
    expect(page.locator("#task-list .task-title")).to_have_text(["Archive old mail"])
    page.get_by_label("Status").select_option("all")
    expect(page.locator("#task-list .task-title")).to_have_count(5)
    page.get_by_label("Status").select_option("open")

    page.get_by_label("high").check()
    expect(page.locator("#task-list .task-title")).to_have_text(["Pay rent", "Invoice client"])
    page.get_by_label("medium").check()
    expect(page.locator("#task-list .task-title")).to_have_count(3)
    page.get_by_label("high").uncheck()
    page.get_by_label("medium").uncheck()

    page.get_by_label("With tags (comma separated)").fill("home, bills")
    expect(page.locator("#task-list .task-title")).to_have_text(["Pay rent"])  # all (the default)
    page.get_by_label("Tags must match").select_option("any")
    expect(page.locator("#task-list .task-title")).to_have_text(["Pay rent", "Water the plants", "Invoice client"])
    page.get_by_label("With tags (comma separated)").fill("")

    soon = datetime.now() + timedelta(days=10)  # the browser's own zone: datetime-local inputs are local
    page.get_by_label("Due before").fill(soon.strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("#task-list .task-title")).to_have_text(["Renew passport", "Pay rent"])
    page.get_by_label("Due after").fill(datetime.now().strftime("%Y-%m-%dT%H:%M"))
    expect(page.locator("#task-list .task-title")).to_have_text(["Pay rent"])
    page.get_by_label("Due after").fill("")
    page.get_by_label("Due before").fill("")

    page.get_by_label("Overdue only").check()
    expect(page.locator("#task-list .task-title")).to_have_text(["Renew passport"])
    expect(page.locator("#task-list .overdue")).to_contain_text("overdue")
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("#task-list .task-title")).to_have_count(4)


def test_full_text_search_finds_words_in_title_tags_and_description(
        tab: Tab, signer: Signer, user: str, seeded: dict[str, int]) -> None:
    sign_in(tab, signer.token(user))
    page = tab.page
    page.get_by_label("Search tasks").fill("expired")  # only in a description, stemmed
    expect(page.locator("#task-list .task-title")).to_have_text(["Renew passport"])
    page.get_by_label("Search tasks").fill("bills")
    expect(page.locator("#task-list .task-title")).to_have_count(2)
    page.get_by_label("Search tasks").fill('"; DROP TABLE tasks; --')
    expect(page.locator("#list-summary")).to_have_text("No tasks match.")
    page.get_by_label("Search tasks").fill("")
    expect(page.locator("#task-list .task-title")).to_have_count(4)


def test_sort_orders_the_list(tab: Tab, signer: Signer, user: str, seeded: dict[str, int]) -> None:
    sign_in(tab, signer.token(user))
    page = tab.page
    # The default: due date first (undated last), then priority.
    expect(page.locator("#task-list .task-title")).to_have_text(
        ["Renew passport", "Pay rent", "Water the plants", "Invoice client"])
    page.get_by_text("Filters and sort").click()
    page.get_by_label("Sort by").select_option(label="Title")
    expect(page.locator("#task-list .task-title")).to_have_text(
        ["Invoice client", "Pay rent", "Renew passport", "Water the plants"])
    page.get_by_label("Sort by").select_option(label="Priority")
    expect(page.locator("#task-list .task-title").first).to_have_text("Pay rent")
    expect(page.locator("#task-list .task-title").last).to_have_text("Water the plants")


def test_tag_counts_are_shown_and_a_tag_filters_the_list(
        tab: Tab, signer: Signer, user: str, seeded: dict[str, int]) -> None:
    sign_in(tab, signer.token(user))
    page = tab.page
    chips = page.locator("#tag-list .chip")
    expect(chips).to_have_text(["bills (2)", "home (2)", "work (2)", "admin (1)"])  # most used first
    page.get_by_role("button", name="home: 2 tasks").click()
    expect(page.get_by_role("button", name="home: 2 tasks")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#task-list .task-title")).to_have_text(["Pay rent", "Water the plants"])
    page.get_by_role("button", name="home: 2 tasks").click()
    expect(page.locator("#task-list .task-title")).to_have_count(4)


def test_load_more_follows_the_keyset_cursor_without_repeats(tab: Tab, signer: Signer, server: Server,
                                                             user: str) -> None:
    with signer.api(server.url, user) as api:
        for i in range(57):
            assert api.post("/tasks", json={"title": f"task {i:02d}"}).status_code == 201
    sign_in(tab, signer.token(user))
    page = tab.page
    expect(page.locator("#task-list .task")).to_have_count(50)
    expect(page.locator("#list-summary")).to_have_text("50+ tasks shown.")
    page.get_by_role("button", name="Load more").click()
    expect(page.locator("#task-list .task")).to_have_count(57)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    shown = titles(page)
    assert sorted(shown) == [f"task {i:02d}" for i in range(57)]
    # Keyboard users land on the first task of the new page.
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')").endswith(shown[50])


def test_user_text_is_shown_as_text_never_as_markup(tab: Tab, signer: Signer, server: Server, user: str) -> None:
    evil = "<img src=x onerror=alert(1)>"
    dialogs: list[str] = []
    tab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with signer.api(server.url, user) as api:
        created = api.post("/tasks", json={"title": evil, "description": "<script>alert(2)</script>",
                                           "tags": ["<b>bold</b>"]})
        assert created.status_code == 201
        audited(api, created.json()["id"])
    sign_in(tab, signer.token(user))
    page = tab.page
    expect(page.locator("#task-list .task-title")).to_have_text(evil)
    expect(page.locator("#task-list .task-desc")).to_have_text("<script>alert(2)</script>")
    expect(page.locator("#tag-list .chip")).to_have_text("<b>bold</b> (1)")
    page.get_by_role("button", name=f"History: {evil}").click()
    expect(page.locator("#history-list")).to_contain_text(evil)
    page.get_by_role("button", name="Close").click()
    page.get_by_role("button", name=f"Edit: {evil}").click()
    expect(page.get_by_label("Title")).to_have_value(evil)
    page.get_by_role("button", name="Cancel").click()
    assert page.locator("main img, main b, main script:not([src])").count() == 0
    assert dialogs == []
