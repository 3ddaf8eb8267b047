"""The task API over HTTP, on SQLite and PostgreSQL, through the same gateway `make run` serves."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from todo.adapters.tables import outbox, tasks
from todo.runtime import Runtime

from .conftest import Api


def create(api: Api, **fields: Any) -> dict[str, Any]:
    response = api.post("/tasks", json={"title": "a task", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [t["id"] for t in response.json()["items"]]


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(tasks)).scalar_one(),
                conn.execute(select(func.count()).select_from(outbox)).scalar_one())


# -- create and read ------------------------------------------------------------------------------


def test_create_returns_201_with_location_etag_and_normalised_fields(alice: Api) -> None:
    response = alice.post("/tasks", json={
        "title": "  Pay rent ", "priority": "high", "tags": ["Home", "home", "Bills"],
        "due_at": "2026-12-01T09:00:00+01:00", "timezone": "Europe/Paris",
        "recurrence": {"rrule": "rrule:freq=monthly;bymonthday=1"}, "reminders": [{"before": "PT15M"}],
    })
    assert response.status_code == 201
    task = response.json()
    assert response.headers["location"] == f"/tasks/{task['id']}"
    assert response.headers["etag"] == '"1"'
    assert task["title"] == "Pay rent"
    assert task["tags"] == ["home", "bills"]
    assert task["due_at"] == "2026-12-01T08:00:00Z"
    assert task["recurrence"] == {"rrule": "FREQ=MONTHLY;BYMONTHDAY=1", "anchor": "schedule"}
    assert task["reminders"] == [{"before": "PT15M"}]
    assert task["status"] == "open" and task["version"] == 1 and task["completed_at"] is None
    assert alice.get(f"/tasks/{task['id']}").json() == task


def test_defaults_are_medium_priority_utc_and_no_tags(alice: Api) -> None:
    task = create(alice)
    assert (task["priority"], task["timezone"], task["tags"], task["description"]) == ("medium", "UTC", [], "")


def test_another_users_task_answers_404_and_reveals_nothing(alice: Api, bob: Api) -> None:
    task = create(alice, title="secret plans")
    for response in (bob.get(f"/tasks/{task['id']}"),
                     bob.patch(f"/tasks/{task['id']}", json={"title": "mine"}),
                     bob.post(f"/tasks/{task['id']}/complete"),
                     bob.delete(f"/tasks/{task['id']}")):
        assert response.status_code == 404
        assert "secret" not in response.text
    assert ids(bob.get("/tasks?status=all")) == []
    assert bob.get("/tags").json() == []
    assert alice.get(f"/tasks/{task['id']}").json()["title"] == "secret plans"


def test_get_with_matching_if_none_match_answers_304(alice: Api) -> None:
    task = create(alice)
    assert alice.get(f"/tasks/{task['id']}", headers={"If-None-Match": '"1"'}).status_code == 304


# -- writes ---------------------------------------------------------------------------------------


def test_merge_patch_replaces_present_fields_and_null_clears(alice: Api) -> None:
    task = create(alice, description="d", due_at="2026-12-01T09:00:00Z", reminders=[{"before": "PT1H"}],
                  recurrence={"rrule": "FREQ=DAILY"}, tags=["a"])
    response = alice.patch(f"/tasks/{task['id']}", json={"title": "new", "due_at": None, "reminders": None,
                                                          "recurrence": None, "description": None},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert (patched["title"], patched["due_at"], patched["reminders"], patched["recurrence"]) == ("new", None, [], None)
    assert patched["description"] == "" and patched["tags"] == ["a"]
    assert patched["version"] == 2 and response.headers["etag"] == '"2"'


def test_patch_merges_into_nested_recurrence(alice: Api) -> None:
    task = create(alice, due_at="2026-12-01T09:00:00Z", recurrence={"rrule": "FREQ=DAILY"})
    patched = alice.patch(f"/tasks/{task['id']}", json={"recurrence": {"anchor": "completion"}}).json()
    assert patched["recurrence"] == {"rrule": "FREQ=DAILY", "anchor": "completion"}


def test_patch_with_stale_if_match_is_412_and_changes_nothing(alice: Api) -> None:
    task = create(alice)
    assert alice.patch(f"/tasks/{task['id']}", json={"title": "v2"}, headers={"If-Match": '"1"'}).status_code == 200
    stale = alice.patch(f"/tasks/{task['id']}", json={"title": "v3"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.headers["etag"] == '"2"'
    assert alice.get(f"/tasks/{task['id']}").json()["title"] == "v2"


def test_patch_that_changes_nothing_keeps_the_version_and_emits_nothing(alice: Api, engine: Engine) -> None:
    task = create(alice, title="same")
    before = counts(engine)
    assert alice.patch(f"/tasks/{task['id']}", json={"title": "same"}).json()["version"] == 1
    assert counts(engine) == before


def test_patch_rejects_read_only_and_unknown_fields(alice: Api) -> None:
    task = create(alice)
    response = alice.patch(f"/tasks/{task['id']}", json={"id": 99, "version": 7, "colour": "red"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"id", "version", "colour"}


def test_patch_that_removes_the_title_is_refused(alice: Api) -> None:
    task = create(alice)
    response = alice.patch(f"/tasks/{task['id']}", json={"title": None})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "title"


def test_complete_and_reopen_are_idempotent_transitions(alice: Api) -> None:
    task = create(alice)
    done = alice.post(f"/tasks/{task['id']}/complete").json()
    assert done["status"] == "completed" and done["completed_at"] is not None and done["version"] == 2
    assert alice.post(f"/tasks/{task['id']}/complete").json()["version"] == 2
    reopened = alice.post(f"/tasks/{task['id']}/reopen").json()
    assert reopened["status"] == "open" and reopened["completed_at"] is None and reopened["version"] == 3


def test_patch_status_completes_through_the_same_rule(alice: Api) -> None:
    task = create(alice)
    patched = alice.patch(f"/tasks/{task['id']}", json={"status": "completed", "priority": "low"}).json()
    assert patched["status"] == "completed" and patched["priority"] == "low" and patched["version"] == 2


def test_delete_answers_204_then_404(alice: Api, engine: Engine) -> None:
    task = create(alice, tags=["x"])
    assert alice.delete(f"/tasks/{task['id']}").status_code == 204
    assert alice.get(f"/tasks/{task['id']}").status_code == 404
    assert alice.delete(f"/tasks/{task['id']}").status_code == 404
    assert alice.get("/tags").json() == []


# -- listing, filters, sorting, search ------------------------------------------------------------


def test_default_order_is_due_date_then_priority_with_undated_last(alice: Api) -> None:
    undated = create(alice, title="undated", priority="high")["id"]
    late_low = create(alice, due_at="2026-12-02T00:00:00Z", priority="low")["id"]
    early = create(alice, due_at="2026-12-01T00:00:00Z", priority="low")["id"]
    late_high = create(alice, due_at="2026-12-02T00:00:00Z", priority="high")["id"]
    assert ids(alice.get("/tasks")) == [early, late_high, late_low, undated]


def test_sort_by_several_keys_descending(alice: Api) -> None:
    b = create(alice, title="b", priority="low")["id"]
    a = create(alice, title="a", priority="low")["id"]
    c = create(alice, title="c", priority="high")["id"]
    assert ids(alice.get("/tasks?sort=-priority,title")) == [c, a, b]
    assert ids(alice.get("/tasks?sort=-title")) == [c, b, a]
    assert ids(alice.get("/tasks?sort=-created_at")) == [c, a, b]


def test_status_filter_defaults_to_open(alice: Api) -> None:
    open_ = create(alice)["id"]
    done = create(alice)["id"]
    alice.post(f"/tasks/{done}/complete")
    assert ids(alice.get("/tasks")) == [open_]
    assert ids(alice.get("/tasks?status=completed")) == [done]
    assert sorted(ids(alice.get("/tasks?status=all"))) == [open_, done]


def test_priority_tag_and_due_filters_combine(alice: Api) -> None:
    t1 = create(alice, priority="high", tags=["work", "urgent"], due_at="2026-12-01T10:00:00Z")["id"]
    t2 = create(alice, priority="high", tags=["work"], due_at="2026-12-05T10:00:00Z")["id"]
    t3 = create(alice, priority="low", tags=["home", "urgent"])["id"]
    assert ids(alice.get("/tasks?priority=high")) == [t1, t2]
    assert ids(alice.get("/tasks?priority=low,medium")) == [t3]
    assert ids(alice.get("/tasks?tags=work,URGENT")) == [t1]
    assert sorted(ids(alice.get("/tasks?tags=home,work&tag_mode=any"))) == [t1, t2, t3]
    assert ids(alice.get("/tasks", params={"due_before": "2026-12-03T00:00:00Z"})) == [t1]
    assert ids(alice.get("/tasks", params={"due_after": "2026-12-03T00:00:00+00:00"})) == [t2]
    assert ids(alice.get("/tasks?tags=urgent&priority=low")) == [t3]


def test_overdue_lists_open_tasks_past_their_due_date(alice: Api) -> None:
    past = create(alice, due_at="2020-01-01T00:00:00Z")["id"]
    create(alice, due_at="2999-01-01T00:00:00Z")
    done = create(alice, due_at="2020-01-01T00:00:00Z")["id"]
    alice.post(f"/tasks/{done}/complete")
    assert ids(alice.get("/tasks?overdue=true&status=all")) == [past]


def test_search_is_full_text_ranked_and_combines_with_filters(alice: Api) -> None:
    in_title = create(alice, title="Quarterly report", priority="low")["id"]
    in_description = create(alice, title="Numbers", description="draft the quarterly reports")["id"]
    in_tag = create(alice, title="Other", tags=["report"], priority="high")["id"]
    create(alice, title="Unrelated", description="nothing to see")
    found = ids(alice.get("/tasks", params={"q": "reports"}))  # stemming: reports ~ report
    assert sorted(found) == sorted([in_title, in_description, in_tag])
    assert found[0] == in_title  # title outranks tags and description
    assert ids(alice.get("/tasks", params={"q": "report", "priority": "high"})) == [in_tag]
    assert ids(alice.get("/tasks", params={"q": "quarterly report", "sort": "title"})) == [in_description, in_title]


def test_search_never_sees_another_users_tasks(alice: Api, bob: Api) -> None:
    create(alice, title="shared word")
    assert ids(bob.get("/tasks", params={"q": "shared"})) == []


@pytest.mark.parametrize("q", ["'; DROP TABLE tasks; --", '" OR 1=1 --', "title:* NEAR(", "%_\\", "AND OR NOT"])
def test_sql_or_search_syntax_in_q_is_only_text(alice: Api, engine: Engine, q: str) -> None:
    create(alice, title="keep me")
    response = alice.get("/tasks", params={"q": q})
    assert response.status_code == 200
    assert response.json()["items"] == []
    assert counts(engine)[0] == 1


def test_tags_lists_counts_for_the_caller(alice: Api, bob: Api) -> None:
    create(alice, tags=["work", "home"])
    create(alice, tags=["Work"])
    create(bob, tags=["bobs"])
    assert alice.get("/tags").json() == [{"name": "work", "count": 2}, {"name": "home", "count": 1}]


# -- pagination -----------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", [None, "-created_at", "title", "-priority,due_at", "updated_at"])
def test_cursor_pages_cover_every_task_once_despite_concurrent_inserts(alice: Api, sort: str | None) -> None:
    created = [create(alice, title=f"t{i % 4}", priority=["low", "medium", "high"][i % 3],
                      due_at=None if i % 5 == 0 else f"2026-12-{1 + i % 7:02d}T00:00:00Z")["id"] for i in range(23)]
    params: dict[str, Any] = {"limit": 5, **({"sort": sort} if sort else {})}
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        response = alice.get("/tasks", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        seen += ids(response)
        cursor = response.json()["next_cursor"]
        pages += 1
        if pages == 2:  # someone adds tasks while we page
            create(alice, title="late", due_at="2026-11-01T00:00:00Z", priority="high")
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(created) <= set(seen)
    whole = ids(alice.get("/tasks", params={**params, "limit": 200}))
    assert [i for i in whole if i in seen] == seen  # pages follow the same order as one big page


def test_cursor_pagination_with_search(alice: Api) -> None:
    for i in range(7):
        create(alice, title=f"report {i}", description="report " * (i % 3))
    seen: list[int] = []
    cursor = None
    while True:
        page = alice.get("/tasks", params={"q": "report", "limit": 3, **({"cursor": cursor} if cursor else {})})
        seen += ids(page)
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 7


@pytest.mark.parametrize("cursor", ["garbage!", "e30", "eyJmIjoiMTIzIiwiayI6WzEsMl19", "W10"])
def test_bad_cursor_is_400(alice: Api, cursor: str) -> None:
    response = alice.get("/tasks", params={"cursor": cursor})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_cursor_of_another_query_is_refused(alice: Api) -> None:
    for _ in range(3):
        create(alice)
    cursor = alice.get("/tasks?limit=1").json()["next_cursor"]
    assert alice.get("/tasks", params={"limit": 1, "cursor": cursor}).status_code == 200
    assert alice.get("/tasks", params={"limit": 1, "cursor": cursor, "sort": "title"}).status_code == 400


# -- bad input ------------------------------------------------------------------------------------

BAD_BODIES = [
    ({"title": ""}, "title"),
    ({"title": "x" * 501}, "title"),
    ({"title": "t", "description": "x" * 20_001}, "description"),
    ({"title": "t", "priority": "urgent"}, "priority"),
    ({"title": "t", "tags": [f"t{i}" for i in range(21)]}, "tags"),
    ({"title": "t", "tags": ["x" * 51]}, "tags.0"),
    ({"title": "t", "due_at": "2026-12-01T09:00:00"}, "due_at"),
    ({"title": "t", "due_at": "tomorrow"}, "due_at"),
    ({"title": "t", "timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"title": "t", "due_at": "2026-12-01T09:00:00Z", "recurrence": {"rrule": "FREQ=SOMETIMES"}}, "recurrence.rrule"),
    ({"title": "t", "due_at": "2026-12-01T09:00:00Z", "recurrence": {"rrule": "FREQ=DAILY;INTERVAL=0"}},
     "recurrence.rrule"),
    ({"title": "t", "recurrence": {"rrule": "FREQ=DAILY"}}, "recurrence"),
    ({"title": "t", "reminders": [{"before": "PT15M"}]}, "reminders"),
    ({"title": "t", "reminders": [{"before": "15 minutes"}]}, "reminders.0.before"),
    ({"title": "t", "reminders": [{"at": "2026-12-01T09:00:00"}]}, "reminders.0.at"),
    ({"title": "t", "reminders": [{"at": "2026-12-01T09:00:00Z", "before": "PT1M"}]}, "reminders.0"),
    ({"title": "t", "reminders": [{"at": "2026-12-01T09:00:00Z"}] * 11}, "reminders"),
    ({"title": "t", "owner": "mallory"}, "owner"),
    ({"title": "t", "id": 5}, "id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_invalid_task_is_422_with_the_field_named_and_nothing_written(
        alice: Api, engine: Engine, body: dict[str, Any], field: str) -> None:
    response = alice.post("/tasks", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and problem["title"]
    assert field in {e["field"] for e in problem["errors"]}
    assert counts(engine) == (0, 0)


def test_malformed_json_is_400(alice: Api, engine: Engine) -> None:
    response = alice.post("/tasks", content=b'{"title": "x",', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["title"] == "Malformed JSON"
    assert counts(engine) == (0, 0)


def test_body_over_one_mebibyte_is_413(alice: Api, engine: Engine) -> None:
    body = b'{"title": "x", "description": "' + b"a" * (1024 * 1024) + b'"}'
    response = alice.post("/tasks", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert counts(engine) == (0, 0)


def test_non_json_content_type_is_415(alice: Api) -> None:
    response = alice.post("/tasks", content=b"title=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "status=maybe", "priority=urgent", "sort=colour",
                                   "sort=title,title", "due_before=2026-01-01T00:00:00", "overdue=perhaps",
                                   "tag_mode=some", "unknown=1"])
def test_invalid_query_is_422(alice: Api, query: str) -> None:
    response = alice.get(f"/tasks?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


@pytest.mark.parametrize("path", ["/tasks/abc", "/tasks/-1", "/tasks/99999999999999999999999", "/tasks/1"])
def test_unknown_task_ids_are_404(alice: Api, path: str) -> None:
    assert alice.get(path).status_code == 404


def test_unknown_path_is_404_and_wrong_method_is_405(alice: Api) -> None:
    assert alice.get("/nothing").status_code == 404
    response = alice.put("/tasks/1", json={})
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


def test_server_keeps_serving_after_bad_input(alice: Api) -> None:
    for body, _ in BAD_BODIES:
        alice.post("/tasks", json=body)
    assert create(alice)["id"] == 1


# -- authentication -------------------------------------------------------------------------------


def test_requests_without_a_valid_token_are_401_and_write_nothing(client: Any, token: Any, engine: Engine) -> None:
    import jwt

    from tests.conftest import SECRET

    expired = token("alice", ttl=-120)
    forged = jwt.encode({"sub": "alice", "iss": "todo-dev", "aud": "todo", "iat": 0, "exp": 2**31},
                        "not-the-secret-" + "x" * 40, algorithm="HS256")
    wrong_audience = jwt.encode({"sub": "alice", "iss": "todo-dev", "aud": "other", "iat": 0, "exp": 2**31},
                                SECRET, algorithm="HS256")
    for headers in ({}, {"Authorization": f"Bearer {expired}"}, {"Authorization": f"Bearer {forged}"},
                    {"Authorization": f"Bearer {wrong_audience}"}, {"Authorization": "Basic YTpi"}):
        response = client.post("/tasks", json={"title": "t"}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
        assert client.get("/tasks", headers=headers).status_code == 401
    assert counts(engine) == (0, 0)


def test_health_and_openapi_need_no_token(client: Any) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize("function", ["create-task", "update-task", "query-tasks"])
def test_every_function_answers_healthz_on_its_own(runtime: Any, function: str) -> None:
    from starlette.testclient import TestClient

    from todo.gateway import load_function

    with TestClient(load_function(function, runtime)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "function": function}


def test_a_request_that_meets_an_unreachable_database_gets_503_with_retry_after(
        alice: Api, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database restart is the moment, not the request: 503 and Retry-After, never a 500."""
    def unreachable() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"),
                               connection_invalidated=True)

    monkeypatch.setattr(runtime, "writing_uow", unreachable)
    monkeypatch.setattr(runtime, "read_uow", unreachable)
    for response in (alice.post("/tasks", json={"title": "x"}), alice.get("/tasks")):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"
