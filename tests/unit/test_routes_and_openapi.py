"""The route table is the one truth: functions serve exactly their rows, the document lists them all."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from openapi_spec_validator import validate

from todo.edge import openapi
from todo.gateway import FUNCTIONS_DIR
from todo.routes import HTTP_FUNCTIONS, ROUTES, NoRoute, match, routes_of


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fn_{name.replace('-', '_')}", FUNCTIONS_DIR / name / "main.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_each_function_handles_exactly_its_rows_of_the_route_table(name: str) -> None:
    fn = load(name).fn
    assert fn.name == name
    assert set(fn.handlers) == {r.operation for r in routes_of(name)}


def test_every_function_folder_is_in_the_route_table() -> None:
    folders = {p.name for p in FUNCTIONS_DIR.iterdir() if (p / "main.py").exists()}
    assert set(HTTP_FUNCTIONS) <= folders


def test_match_finds_params_and_reports_allowed_methods() -> None:
    route, params = match("PATCH", "/tasks/42")
    assert (route.function, params) == ("update-task", {"id": "42"})
    assert match("HEAD", "/tasks")[0].operation == "listTasks"
    with pytest.raises(NoRoute) as exc:
        match("PUT", "/tasks/42")
    assert set(exc.value.allowed) == {"GET", "PATCH", "DELETE"}
    with pytest.raises(NoRoute) as exc:
        match("GET", "/tasks/42/nothing")
    assert exc.value.allowed == ()


def test_openapi_document_is_valid_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_openapi_lists_exactly_the_route_table() -> None:
    paths = openapi.document()["paths"]
    listed = {(m.upper(), p) for p, ops in paths.items() for m in ops if p != "/healthz"}
    assert listed == {(r.method, r.path) for r in ROUTES}
    assert {op["operationId"] for p, ops in paths.items() for op in ops.values() if p != "/healthz"} == {
        r.operation for r in ROUTES}


def test_openapi_request_schemas_are_the_validating_models() -> None:
    document = openapi.document()
    create = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][create["$ref"].rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["title"]["maxLength"] == 500
    assert set(schema["required"]) == {"title"}
    params = {p["name"] for p in document["paths"]["/tasks"]["get"]["parameters"]}
    assert {"q", "status", "priority", "tags", "tag_mode", "due_before", "due_after", "overdue", "sort", "limit",
            "cursor"} == params
