"""The public HTTP routing is the route table: the gateway, driven request by request, reaches the right
function's cluster-local Service for every row of ROUTES."""

from __future__ import annotations

from todo.routes import HTTP_FUNCTIONS, ROUTES, Route
from todo_dev import deploy

from .checks import Manifests, container, gateway_problems, gateway_upstreams


def test_every_route_of_the_table_reaches_its_function(manifests: Manifests) -> None:
    assert gateway_problems(manifests, ROUTES) == []


def test_the_gateway_forwards_to_each_http_function_at_its_cluster_local_address(manifests: Manifests,
                                                                                 project: deploy.Project) -> None:
    present = [f for f in HTTP_FUNCTIONS if project.present(f)]
    assert gateway_upstreams(manifests) == {f: f"http://{f}.todo.svc.cluster.local" for f in present}


def test_the_gateway_runs_the_route_table_proxy(manifests: Manifests) -> None:
    gateway = container(manifests.services()[deploy.GATEWAY])
    assert gateway["command"] == ["python", "-m", "todo.cli"]
    assert gateway["args"][:5] == ["proxy", "--host", "0.0.0.0", "--port", "8080"]  # noqa: S104


def test_a_missing_upstream_is_reported_per_route(broken: Manifests) -> None:
    gateway = container(broken.services()[deploy.GATEWAY])
    gateway["args"] = [a for a in gateway["args"] if not a.startswith("--upstream=update-task=")]
    problems = gateway_problems(broken, ROUTES)
    assert "PATCH /tasks/{id} → update-task: the gateway has no upstream for update-task" in problems
    assert not any("POST /tasks → create-task" in p for p in problems)


def test_an_upstream_pointing_at_the_wrong_function_is_reported(broken: Manifests) -> None:
    gateway = container(broken.services()[deploy.GATEWAY])
    gateway["args"] = [a.replace("update-task=http://update-task", "update-task=http://query-tasks")
                       for a in gateway["args"]]
    problems = gateway_problems(broken, ROUTES)
    assert "gateway forwards update-task to http://query-tasks.todo.svc.cluster.local, not its cluster-local " \
           "address" in problems
    assert any(p.startswith("DELETE /tasks/{id} → update-task: the gateway sent it to http://query-tasks")
               for p in problems)


def test_a_route_added_to_the_table_without_regenerating_is_reported(manifests: Manifests) -> None:
    routes = (*ROUTES, Route("GET", "/reminders", "list-reminders", "listReminders", "Upcoming reminders"))
    problems = gateway_problems(manifests, routes)
    assert "GET /reminders → list-reminders: the gateway has no upstream for list-reminders" in problems


def test_a_route_taken_out_of_the_table_is_reported(manifests: Manifests) -> None:
    routes = tuple(r for r in ROUTES if r.function != "create-task")
    assert "gateway forwards to create-task, which serves no route" in gateway_problems(manifests, routes)


def test_the_gateway_holds_a_websocket_as_long_as_push_update_does(manifests: Manifests) -> None:
    # /ws passes through the gateway: an open socket is one request for its whole life on both Services.
    services = manifests.services()
    timeouts = {name: services[name]["spec"]["template"]["spec"]["timeoutSeconds"]
                for name in ("gateway", "push-update")}
    assert timeouts["gateway"] >= timeouts["push-update"] == 600
    assert "--upstream=push-update=http://push-update.todo.svc.cluster.local" in container(services["gateway"])["args"]
