"""The edge is total (issue 10): for arbitrary JSON bodies and query strings, every operation answers 2xx or
a 4xx problem, and nothing raises (the test client re-raises what the app does not answer)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from todo.edge.schemas import NotificationSettingsIn, SnoozeIn, TaskWrite

from .conftest import Api

PROBLEM = "application/problem+json"
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What a careless or hostile client sends: any JSON, with numbers beyond 64 bits, NaN, and text with every
# kind of character (NUL, control characters, lone surrogates).
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00", "1700000000",
                              "P9999999999W", "PT15M", "America", "Europe/Paris", "2031-01-01T09:00:00Z",
                              "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30;BYSETPOS=1;COUNT=1", "a@b.cc\n"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


def shaped_like(*models: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the models' own keys (so that validation goes deep) and arbitrary values."""
    keys = sorted({name for model in models for name in model.model_fields} | {"for", "rrule", "before", "at"})
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=6)


bodies = st.one_of(json_values, shaped_like(TaskWrite, SnoozeIn, NotificationSettingsIn),
                   st.builds(lambda r: {"title": "t", "recurrence": r, "due_at": "2031-01-01T09:00:00Z"},
                             shaped_like(TaskWrite)))
query_keys = st.sampled_from(["q", "status", "priority", "tags", "tag_mode", "due_before", "due_after", "overdue",
                              "sort", "limit", "cursor", "since", "until", "user_id", "task_id", "action", "scope"])
queries = st.dictionaries(query_keys, st.text(max_size=30) | scalars.map(str), max_size=5)


def assert_answered(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.text
        assert response.json()["status"] == response.status_code


@PROPERTY
@given(body=bodies)
def test_any_json_body_gets_2xx_or_a_4xx_problem_on_every_write(alice: Api, body: Any) -> None:
    raw = json.dumps(body, allow_nan=True).encode()
    target = alice.post("/tasks", json={"title": "target", "due_at": "2031-01-01T09:00:00Z"}).json()["id"]
    for method, path, content_type in (("post", "/tasks", "application/json"),
                                       ("patch", f"/tasks/{target}", "application/merge-patch+json"),
                                       ("post", f"/tasks/{target}/snooze", "application/json"),
                                       ("put", "/me/notifications", "application/json")):
        assert_answered(getattr(alice, method)(path, content=raw, headers={"Content-Type": content_type}))


@PROPERTY
@given(query=queries)
def test_any_query_string_gets_2xx_or_a_4xx_problem_on_every_read(client: TestClient, token: Any,
                                                                  query: dict[str, str]) -> None:
    auditor = Api(client, token("carol", ["auditor"]))
    for path in ("/tasks", "/audit", "/changes", "/tasks/1/history", "/tags"):
        assert_answered(auditor.get(path, params=query))
