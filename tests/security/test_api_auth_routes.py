"""Issue 21 #3/#17: with --api-auth every route of the server's own route table needs the credentials
(/sdapi, /controlnet, /docs, /redoc, /openapi.json, whatever is added later); only gradio's UI, mounted
at "/", is left to --gradio-auth. The test walks the route table, so a new route cannot be forgotten."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from starlette.routing import Mount

from tests.security.routes import flat_routes
from tests.security.servers import served
from webui.api.access import is_ui_route

AUTH = ("api", "s3cret")


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, Any]]:
    data = tmp_path_factory.mktemp("locked")
    with served(data, "--api", "--api-auth", "api:s3cret", "--gradio-auth", "ui:uipass") as server:
        yield server


def _requests(web: Any) -> list[tuple[str, str]]:
    """(method, path) of every route but the UI's, path parameters filled in."""
    found = []
    for route in flat_routes(web.routes):
        if is_ui_route(route):
            continue
        path = re.sub(r"\{[^}]*\}", "x", route.path)
        if isinstance(route, Mount):  # static files (the offline docs' assets): a file under it
            path += "/x"
        for method in sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"}):
            found.append((method, path))
    return found


def test_every_route_but_the_ui_needs_the_api_password(locked):
    _, url, web = locked
    assert sum(1 for route in flat_routes(web.routes) if is_ui_route(route)) == 1  # gradio's mount
    routes = _requests(web)
    paths = {path for _, path in routes}
    assert {"/docs", "/redoc", "/openapi.json", "/sdapi/v1/txt2img", "/sdapi/v1/progress"} <= paths
    assert {"/controlnet/detect", "/controlnet/model_list", "/controlnet/module_list"} <= paths
    for method, path in routes:
        response = requests.request(method, url + path, json={}, timeout=30)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["WWW-Authenticate"].startswith("Basic"), (method, path)
    # paths under the API's prefixes that no route serves are the API's too (not gradio's 404)
    assert requests.get(f"{url}/sdapi/v1/no-such-route", timeout=30).status_code == 401
    assert requests.get(f"{url}/controlnet/no-such-route", timeout=30).status_code == 401


def test_the_password_opens_them(locked):
    _, url, _ = locked
    assert requests.get(f"{url}/controlnet/module_list", auth=AUTH, timeout=30).json()["module_list"]
    assert "/controlnet/detect" in requests.get(f"{url}/openapi.json", auth=AUTH, timeout=30).json()["paths"]
    assert "swagger" in requests.get(f"{url}/docs", auth=AUTH, timeout=30).text.lower()


def test_the_ui_is_left_to_gradio_auth(locked):
    _, url, _ = locked
    page = requests.get(f"{url}/", timeout=30)  # gradio's login page, not the API's Basic challenge
    assert page.status_code == 200 and "WWW-Authenticate" not in page.headers
    assert requests.get(f"{url}/gradio_api/login_check", timeout=30).status_code == 401  # gradio's own
    session = requests.Session()
    login = session.post(f"{url}/login", data={"username": "ui", "password": "uipass"}, timeout=30)
    assert login.status_code == 200
    assert session.get(f"{url}/gradio_api/login_check", timeout=30).status_code == 200
    # the UI's login does not open the API
    assert session.get(f"{url}/sdapi/v1/options", timeout=30).status_code == 401
