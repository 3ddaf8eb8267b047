"""Issue 10, found 6 and 7: every input outside the accepted ranges (todo.limits) is a 4xx problem before any
work, on SQLite and PostgreSQL. One test per class of the probe's findings, not per case."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from todo.edge.openapi import document
from todo.settings import Settings

from .conftest import Api

PROBLEM = "application/problem+json"
NEAR_YEAR_ONE = "0001-01-01T00:00:00+14:00"
NEAR_YEAR_9999 = "9999-12-31T23:00:00-05:00"


def refused(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def create(api: Api, **fields: Any) -> dict[str, Any]:
    response = api.post("/tasks", json={"title": "a task", **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def open_titles(api: Api) -> list[str]:
    return [t["title"] for t in api.get("/tasks").json()["items"]]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signed(settings: Settings, claims_json: str) -> str:
    """A token whose claims are written by hand: JSON numbers no encoder of ours would write (10^400)."""
    secret = settings.hs256_secret()
    assert secret is not None
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(claims_json.encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def claims_with(settings: Settings, **raw: str) -> str:
    now = int(time.time())
    base = {"sub": "mallory", "iss": settings.jwt_issuer, "aud": settings.jwt_audience, "iat": now, "exp": now + 60}
    text = json.dumps(base)[:-1]
    return text + "".join(f', "{k}": {v}' for k, v in raw.items()) + "}"


def test_a_body_nested_100000_deep_is_a_400_problem_not_a_recursion_error(alice: Api) -> None:
    for path, content_type in (("/tasks", "application/json"), ("/me/notifications", "application/json")):
        method = alice.post if path == "/tasks" else alice.put
        body = refused(method(path, content=b"[" * 100_000, headers={"Content-Type": content_type}), 400)
        assert "nested" in body["detail"]
    task = create(alice)
    patch = alice.patch(f"/tasks/{task['id']}", content=b'{"title":' + b"[" * 100_000,
                        headers={"Content-Type": "application/merge-patch+json"})
    refused(patch, 400)


@pytest.mark.parametrize("instant", [NEAR_YEAR_ONE, NEAR_YEAR_9999])
def test_a_date_time_near_year_one_or_9999_with_an_offset_is_refused_wherever_it_is_given(
        alice: Api, instant: str) -> None:
    task = create(alice, due_at="2031-01-01T09:00:00Z")
    assert refused(alice.post("/tasks", json={"title": "t", "due_at": instant}))["errors"][0]["field"] == "due_at"
    refused(alice.post("/tasks", json={"title": "t", "reminders": [{"at": instant}]}))
    refused(alice.patch(f"/tasks/{task['id']}", json={"due_at": instant},
                        headers={"Content-Type": "application/merge-patch+json"}))
    refused(alice.post(f"/tasks/{task['id']}/snooze", json={"until": instant}))
    refused(alice.get("/tasks", params={"due_before": instant}))
    refused(alice.get("/tasks", params={"due_after": instant}))
    assert open_titles(alice) == ["a task"]


def test_an_integer_epoch_is_not_a_date_time_in_a_body_or_a_query(alice: Api) -> None:
    refused(alice.post("/tasks", json={"title": "t", "due_at": 1_900_000_000}))
    refused(alice.post("/tasks", json={"title": "t", "due_at": "1900000000"}))
    refused(alice.get("/tasks", params={"due_before": "1900000000"}))
    refused(alice.post("/tasks", json={"title": "t", "due_at": "2031-01-01"}))
    assert open_titles(alice) == []


@pytest.mark.parametrize("duration", ["P9999999999W", "PT99999999999999999999S", "P367D"])
def test_an_iso_duration_beyond_the_limit_is_refused_in_reminders_and_snoozes(alice: Api, duration: str) -> None:
    task = create(alice, due_at="2031-01-01T09:00:00Z")
    refused(alice.post("/tasks", json={"title": "t", "due_at": "2031-01-01T09:00:00Z",
                                       "reminders": [{"before": duration}]}))
    refused(alice.post(f"/tasks/{task['id']}/snooze", json={"for": duration}))


@pytest.mark.parametrize("zone", ["America", "Europe/", "../etc/passwd", "posixrules/../UTC", "Europe/Paris\x00"])
def test_a_folder_of_the_zone_database_or_a_path_is_not_a_time_zone(alice: Api, zone: str) -> None:
    [error] = refused(alice.post("/tasks", json={"title": "t", "timezone": zone}))["errors"]
    assert error["field"] == "timezone"


def test_integers_beyond_64_bits_in_paths_queries_and_cursors_are_4xx(alice: Api, token: Any,
                                                                       client: TestClient) -> None:
    huge = str(2**64)
    refused(alice.get(f"/tasks/{huge}"), 404)
    refused(alice.get(f"/tasks/{2**63}/history"), 404)
    refused(alice.get("/tasks", params={"limit": huge}))
    refused(alice.get("/changes", params={"since": huge}))
    auditor = Api(client, token("carol", ["auditor"]))
    refused(auditor.get("/audit", params={"task_id": huge}))
    refused(auditor.get("/audit", params={"cursor": base64.urlsafe_b64encode(
        json.dumps({"after": 2**64}).encode()).decode()}), 400)


def test_a_forged_cursor_holding_what_no_driver_binds_is_a_400(alice: Api) -> None:
    create(alice, due_at="2031-01-01T09:00:00Z")
    create(alice, due_at="2031-01-02T09:00:00Z")
    first = alice.get("/tasks", params={"limit": 1}).json()
    payload = json.loads(base64.urlsafe_b64decode(first["next_cursor"] + "=="))
    for keys in ([NEAR_YEAR_9999, -3, 2**64], ["2031-01-01T09:00:00+00:00", 2**64, 1],
                 ["2031-01-01T09:00:00+00:00", 2, "1e400"]):
        forged = base64.urlsafe_b64encode(json.dumps({**payload, "k": keys}).encode()).decode().rstrip("=")
        refused(alice.get("/tasks", params={"limit": 1, "cursor": forged}), 400)
    ranked = base64.urlsafe_b64encode(b'{"f": "x", "k": [1e400, 1]}').decode()
    refused(alice.get("/tasks", params={"q": "task", "cursor": ranked}), 400)


@pytest.mark.parametrize("text", ["nul\x00", "bell\x07", "escape\x1b[31m", "c1\x85inside", "lone \ud800"])
def test_text_no_store_keeps_or_with_control_characters_is_refused_in_titles_and_tags(alice: Api, text: str) -> None:
    body = json.dumps({"title": text}).encode()  # json escapes the surrogate as \\ud800, as a client would
    refused(alice.post("/tasks", content=body, headers={"Content-Type": "application/json"}))
    refused(alice.post("/tasks", json={"title": "t", "tags": ["ok", text.replace("\ud800", "\x01")]}))
    assert open_titles(alice) == []


def test_a_description_keeps_line_breaks_and_tabs_but_no_other_control_character(alice: Api) -> None:
    kept = create(alice, description="line one\r\nline two\tindented")
    assert kept["description"] == "line one\r\nline two\tindented"
    refused(alice.post("/tasks", json={"title": "t", "description": "form\x0cfeed"}))


def test_an_email_with_a_trailing_newline_is_refused_and_nothing_stored(alice: Api) -> None:
    [error] = refused(alice.put("/me/notifications", json={"email": "alice@example.com\n"}))["errors"]
    assert error["field"] == "email"
    assert alice.get("/me/notifications").json()["email"] is None


@pytest.mark.parametrize("exp", ["1" + "0" * 400, "1e400"])
def test_a_token_whose_exp_is_beyond_any_date_gets_401_on_ws_ticket_and_a_refused_socket(
        client: TestClient, settings: Settings, exp: str) -> None:
    token = signed(settings, claims_with(settings, exp=exp))
    ticket = client.post("/ws/ticket", headers={"Authorization": f"Bearer {token}"})
    assert refused(ticket, 401)["title"] == "Unauthorized"
    with pytest.raises(WebSocketDisconnect) as closed, \
            client.websocket_connect("/ws", subprotocols=["bearer", token]):
        pass
    assert closed.value.code == 1008  # a close frame before accept (HTTP 403 on the upgrade), not a drop


def test_a_string_of_roles_grants_no_role(client: TestClient, settings: Settings) -> None:
    token = signed(settings, claims_with(settings, roles='"admin"'))
    refused(client.get("/audit", headers={"Authorization": f"Bearer {token}"}), 401)


def test_skip_of_a_task_that_does_not_recur_answers_a_status_its_operation_documents(alice: Api) -> None:
    task = create(alice)
    body = refused(alice.post(f"/tasks/{task['id']}/skip"))
    assert body["errors"][0]["field"] == "recurrence"
    assert "422" in document()["paths"]["/tasks/{id}/skip"]["post"]["responses"]
