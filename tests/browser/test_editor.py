"""Creating and editing a task: every field, the time-zone picker, recurrence presets and the raw RRULE,
reminders, field errors beside their fields, the 412 of a stale edit, and the instance/series scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.test_embedded_server import Server

from .harness import Signer, Tab, eventually, sign_in

pytestmark = pytest.mark.browser


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def only_task(signer: Signer, server: Server, user: str, **query: str) -> dict[str, Any]:
    with signer.api(server.url, user) as api:
        items = api.get("/tasks", params={"status": "all", **query}).json()["items"]
    assert len(items) == 1, items
    return items[0]


def editor(page: Page) -> Locator:
    """The open task editor: its labels are looked up inside it (other dialogs reuse some words)."""
    dialog = page.locator("#editor")
    expect(dialog).to_be_visible()
    return dialog


def test_create_a_task_with_every_field(signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    ed = page.locator("#editor")
    page.get_by_role("button", name="New task").click()
    editor(page)
    ed.get_by_label("Title").fill("Team sync")
    ed.get_by_label("Description").fill("Agenda in the doc")
    ed.get_by_label("Priority").select_option("high")
    ed.get_by_label("Tags (comma separated)").fill("Work, meetings")
    ed.get_by_label("Time zone", exact=True).select_option("America/New_York")
    ed.get_by_label("Due", exact=True).fill("2027-03-15T09:30")  # EDT (from 14 March 2027): UTC-4
    ed.get_by_label("Repeats").select_option("weekly")
    ed.get_by_label("Mon", exact=True).check()
    ed.get_by_label("Wed", exact=True).check()
    ed.get_by_label("Next one counted from").select_option("completion")
    ed.get_by_label("Ends").select_option("count")
    ed.get_by_label("Number of times").fill("5")
    expect(ed.get_by_label("RRULE")).to_have_value("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5")
    page.get_by_role("button", name="Add a reminder").click()
    ed.get_by_label("How long before").fill("1")
    ed.get_by_label("Unit").select_option("hours")
    page.get_by_role("button", name="Add a reminder").click()
    page.locator("#e-reminders li").nth(1).get_by_label("Remind", exact=True).select_option("at")
    page.locator("#e-reminders li").nth(1).get_by_label("At (task's time zone)").fill("2027-03-14T18:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.locator("#task-list .task-title")).to_have_text(["Team sync"])
    expect(page.locator("#task-list .task-meta")).to_contain_text(
        "repeats weekly on Mon, Wed, 5 times (from completion)")

    task = only_task(signer, server, user)
    assert (task["title"], task["description"], task["priority"]) == ("Team sync", "Agenda in the doc", "high")
    assert task["tags"] == ["work", "meetings"]
    assert task["timezone"] == "America/New_York"
    assert instant(task["due_at"]) == datetime(2027, 3, 15, 13, 30, tzinfo=UTC)
    assert task["recurrence"] == {"rrule": "FREQ=WEEKLY;BYDAY=MO,WE;COUNT=5", "anchor": "completion"}
    assert task["reminders"][0] == {"before": "PT1H"}
    assert instant(task["reminders"][1]["at"]) == datetime(2027, 3, 14, 22, 0, tzinfo=UTC)

    # Reopened, the editor shows what was saved, on the task's own wall clock.
    page.get_by_role("button", name="Edit: Team sync").click()
    expect(ed.get_by_label("Due", exact=True)).to_have_value("2027-03-15T09:30")
    expect(ed.get_by_label("Time zone", exact=True)).to_have_value("America/New_York")
    expect(ed.get_by_label("Repeats")).to_have_value("weekly")
    expect(ed.get_by_label("Mon", exact=True)).to_be_checked()
    expect(ed.get_by_label("Number of times")).to_have_value("5")
    second_reminder = page.locator("#e-reminders li").nth(1)
    expect(second_reminder.get_by_label("At (task's time zone)")).to_have_value("2027-03-14T18:00")
    page.get_by_role("button", name="Cancel").click()


PRESETS = [
    ("daily", {}, "FREQ=DAILY"),
    ("weekdays", {}, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("weekly", {"days": ["Tue", "Fri"]}, "FREQ=WEEKLY;BYDAY=TU,FR"),
    ("monthly", {"monthday": "31"}, "FREQ=MONTHLY;BYMONTHDAY=31"),
    ("lastday", {}, "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("yearly", {"until": "2030-01-01"}, "FREQ=YEARLY;UNTIL=20300101"),
    ("custom", {"rrule": "FREQ=DAILY;INTERVAL=3"}, "FREQ=DAILY;INTERVAL=3"),
]


def test_recurrence_presets_and_the_raw_rule_are_saved_as_their_rrules(
        signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    ed = page.locator("#editor")
    for preset, options, rule in PRESETS:
        page.get_by_role("button", name="New task").click()
        editor(page)
        ed.get_by_label("Title").fill(f"preset {preset}")
        ed.get_by_label("Due", exact=True).fill("2027-01-04T08:00")
        ed.get_by_label("Repeats").select_option(preset)
        for day in options.get("days", []):
            ed.get_by_label(day, exact=True).check()
        if "monthday" in options:
            ed.get_by_label("Day of the month").fill(options["monthday"])
        if "until" in options:
            ed.get_by_label("Ends").select_option("until")
            ed.get_by_label("Last date").fill(options["until"])
        if "rrule" in options:
            ed.get_by_label("RRULE").fill(options["rrule"])
        expect(ed.get_by_label("RRULE")).to_have_value(rule)
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_role("dialog")).to_be_hidden()
    with signer.api(server.url, user) as api:
        saved = {t["title"]: t["recurrence"]["rrule"] for t in api.get("/tasks").json()["items"]}
    assert saved == {f"preset {preset}": rule for preset, _, rule in PRESETS}

    # Typed by hand, a rule a preset writes selects that preset.
    page.get_by_role("button", name="New task").click()
    ed.get_by_label("Repeats").select_option("custom")
    ed.get_by_label("RRULE").fill("FREQ=MONTHLY;BYMONTHDAY=-1")
    expect(ed.get_by_label("Repeats")).to_have_value("lastday")
    page.get_by_role("button", name="Cancel").click()


def test_the_time_zone_defaults_to_the_browsers(tabs: Any, signer: Signer, server: Server, user: str) -> None:
    tab = tabs(timezone_id="Asia/Tokyo")
    sign_in(tab, signer.token(user))
    page = tab.page
    ed = page.locator("#editor")
    page.get_by_role("button", name="New task").click()
    expect(ed.get_by_label("Time zone", exact=True)).to_have_value("Asia/Tokyo")
    ed.get_by_label("Title").fill("Morning in Tokyo")
    ed.get_by_label("Due", exact=True).fill("2027-01-10T08:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    task = only_task(signer, server, user)
    assert task["timezone"] == "Asia/Tokyo"
    assert instant(task["due_at"]) == datetime(2027, 1, 9, 23, 0, tzinfo=UTC)


def test_field_errors_from_the_api_appear_beside_their_fields(signed_in: Tab) -> None:
    signed_in.allow("status of 422")
    page = signed_in.page
    ed = page.locator("#editor")
    page.get_by_role("button", name="New task").click()
    ed.get_by_label("Title").fill("   ")
    ed.get_by_label("Due", exact=True).fill("2027-01-04T08:00")
    ed.get_by_label("Repeats").select_option("custom")
    ed.get_by_label("RRULE").fill("FREQ=SECONDLY")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#e-title-error")).to_contain_text("at least 1 character")
    expect(ed.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    expect(ed.get_by_label("Title")).to_be_focused()
    expect(page.locator("#e-rrule-error")).to_contain_text("FREQ=SECONDLY is not allowed")
    expect(ed.get_by_label("RRULE")).to_have_attribute("aria-invalid", "true")

    ed.get_by_label("Title").fill("fixed")
    ed.get_by_label("Repeats").select_option("none")
    ed.get_by_label("Due", exact=True).fill("")
    page.get_by_role("button", name="Add a reminder").click()  # "before" needs a due date
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-error-for=reminders]")).to_contain_text("needs a due_at")
    expect(page.locator("#e-title-error")).to_be_empty()
    ed.get_by_label("Remind", exact=True).select_option("at")
    ed.get_by_label("At (task's time zone)").fill("2020-01-01T10:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()


def test_a_stale_edit_offers_the_current_version_instead_of_failing_silently(
        signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    signed_in.allow("status of 412")
    page = signed_in.page
    ed = page.locator("#editor")
    with signer.api(server.url, user) as api:
        task_id = api.post("/tasks", json={"title": "Draft the plan"}).json()["id"]
    expect(page.locator("#task-list .task-title")).to_have_text(["Draft the plan"])
    page.get_by_role("button", name="Edit: Draft the plan").click()
    ed.get_by_label("Description").fill("my version")
    with signer.api(server.url, user) as api:  # someone else, meanwhile
        changed = api.patch(f"/tasks/{task_id}", json={"title": "Draft the plan (theirs)"},
                            headers={"Content-Type": "application/merge-patch+json"})
        assert changed.status_code == 200
    page.get_by_role("button", name="Save").click()
    alert = page.get_by_role("alert").filter(has_text="Someone changed this task")
    expect(alert).to_be_visible()
    expect(page.get_by_role("button", name="Load the current version")).to_be_focused()
    page.get_by_role("button", name="Load the current version").click()
    expect(ed.get_by_label("Title")).to_have_value("Draft the plan (theirs)")
    expect(alert).to_be_hidden()
    ed.get_by_label("Description").fill("my version, on theirs")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    task = only_task(signer, server, user)
    assert (task["title"], task["description"]) == ("Draft the plan (theirs)", "my version, on theirs")
    assert task["version"] == 3


def test_editing_an_instance_of_a_series_asks_whether_it_is_for_this_one_or_those_to_come(
        signed_in: Tab, signer: Signer, server: Server, user: str) -> None:
    page = signed_in.page
    ed = page.locator("#editor")
    due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    with signer.api(server.url, user) as api:
        api.post("/tasks", json={"title": "Stand-up", "due_at": due, "recurrence": {"rrule": "FREQ=DAILY"}})
    page.get_by_role("button", name="Edit: Stand-up").click()
    scope = page.get_by_role("group", name="This task repeats")
    expect(scope).to_be_visible()
    ed.get_by_label("Title").fill("Stand-up (new room)")
    scope.get_by_label("this one and those to come").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    def row_of(occurrence: int) -> Locator:
        """The list's row of that instance, once on-task-event has made it. The completed instance and the
        next share a title, and each change comes over the socket on its own: wait for the new row, not
        for the title, or the click may land on the row the next update replaces."""
        def made() -> int | bool:
            with signer.api(server.url, user) as api:
                items = api.get("/tasks", params={"status": "all"}).json()["items"]
            return next((t["id"] for t in items if t["series"]["occurrence"] == occurrence), False)

        row = page.locator(f'#task-list li.task[data-id="{eventually(made)}"]')
        expect(row).to_be_visible()
        return row

    page.get_by_role("button", name="Complete: Stand-up (new room)").click()
    # The next instance follows the series' new template.
    second = row_of(2)
    expect(page.locator("#task-list .task-title")).to_have_text(["Stand-up (new room)"])

    second.get_by_role("button", name="Edit: Stand-up (new room)").click()
    ed.get_by_label("Title").fill("Stand-up (only today)")  # the default scope: this one only
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    page.get_by_role("button", name="Complete: Stand-up (only today)").click()
    row_of(3)
    expect(page.locator("#task-list .task-title")).to_have_text(["Stand-up (new room)"])

    def occurrences() -> list[tuple[int, str]]:
        with signer.api(server.url, user) as api:
            items = api.get("/tasks", params={"status": "all", "sort": "due_at"}).json()["items"]
        found = [(t["series"]["occurrence"], t["title"]) for t in items]
        return found if len(found) == 3 else False  # type: ignore[return-value]

    assert eventually(occurrences) == [(1, "Stand-up (new room)"), (2, "Stand-up (only today)"),
                                       (3, "Stand-up (new room)")]
