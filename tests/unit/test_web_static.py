"""The web client as the gateway serves it: types, versioned asset URLs, caching, the CSP."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.testclient import TestClient

from todo.edge.static import CONTENT_SECURITY_POLICY, WebClient, web_routes
from todo.proxy import build_proxy_app

INDEX = """<!doctype html><html lang="en"><head><meta name="todo-dev-sign-in" content="{{dev_sign_in}}">
<link rel="stylesheet" href="{{assets}}/app.css"><script type="module" src="{{assets}}/js/main.js"></script>
</head><body></body></html>"""


def make_web(root: Path, **files: str) -> Path:
    content = {"index.html": INDEX, "app.css": "body{}", "js/main.js": "import './x.js';", "js/x.js": "", **files}
    for name, text in content.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def client_for(web_dir: Path, dev_sign_in: bool = False) -> TestClient:
    return TestClient(Starlette(routes=web_routes(web_dir, dev_sign_in=dev_sign_in)))


def asset_urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/assets/[^"]+)"', html)


def test_index_names_its_assets_under_the_version_and_is_revalidated(tmp_path: Path) -> None:
    client = client_for(make_web(tmp_path))
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    version = WebClient.load(tmp_path, dev_sign_in=False).version  # type: ignore[union-attr]
    assert asset_urls(page.text) == [f"/assets/{version}/app.css", f"/assets/{version}/js/main.js"]
    assert "{{" not in page.text
    assert client.get("/", headers={"If-None-Match": page.headers["etag"]}).status_code == 304


def test_assets_have_their_types_and_are_cached_for_a_year(tmp_path: Path) -> None:
    client = client_for(make_web(tmp_path, **{"icon.svg": "<svg/>"}))
    css, js, svg = (client.get(url) for url in [*asset_urls(client.get("/").text),
                                                  asset_urls(client.get("/").text)[0].replace("app.css", "icon.svg")])
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert svg.headers["content-type"] == "image/svg+xml"
    for response in (css, js, svg):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert js.text == "import './x.js';"


def test_any_change_of_any_file_moves_every_asset_url(tmp_path: Path) -> None:
    before = WebClient.load(make_web(tmp_path / "a"), dev_sign_in=False)
    after = WebClient.load(make_web(tmp_path / "b", **{"js/x.js": "export {};"}), dev_sign_in=False)
    assert before is not None and after is not None
    assert before.version != after.version


def test_an_old_version_a_missing_file_or_a_path_outside_are_404_problems(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("outside")
    client = client_for(make_web(tmp_path / "web"))
    current = asset_urls(client.get("/").text)[0]
    for url in (current.replace(current.split("/")[2], "0" * 12), current.replace("app.css", "nope.css")):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"
    for url in (current.replace("app.css", "../../secret.txt"), current.replace("app.css", "%2e%2e/%2e%2e/secret.txt"),
                current.replace("app.css", "..%2f..%2fsecret.txt")):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "outside" not in response.text


def test_other_methods_get_a_405_problem(tmp_path: Path) -> None:
    client = client_for(make_web(tmp_path))
    response = client.post("/")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["content-type"] == "application/problem+json"
    assert client.head("/").status_code == 200


def test_every_answer_carries_the_strict_content_security_policy(tmp_path: Path) -> None:
    client = client_for(make_web(tmp_path))
    for url in ["/", *asset_urls(client.get("/").text)]:
        assert client.get(url).headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_the_page_says_whether_this_server_offers_the_developer_sign_in(tmp_path: Path) -> None:
    web = make_web(tmp_path)
    assert 'content="on"' in client_for(web, dev_sign_in=True).get("/").text
    assert 'content="off"' in client_for(web, dev_sign_in=False).get("/").text


def test_without_a_web_folder_there_is_nothing_to_serve(tmp_path: Path) -> None:
    assert web_routes(tmp_path / "absent") == []


def test_the_real_stack_proxy_serves_the_client_before_its_route_table(tmp_path: Path) -> None:
    with TestClient(build_proxy_app({}, make_web(tmp_path))) as client:
        assert client.get("/").headers["content-type"] == "text/html; charset=utf-8"
        assert client.get("/nothing").status_code == 404
