"""Sharing and access: --api-auth, --gradio-auth(-path), CORS, TLS, what gradio may serve, --share offline
and the warning for an exposed server without passwords. Real servers on 127.0.0.1."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import make_app
from webui.api.access import exposure_warning
from webui.core.cmd_args import REPO_ROOT, gradio_credentials, parse_args

API_USER, API_PASSWORD = "api", "s3cret:with:colons"


def start(app) -> tuple[object, object, str]:
    from webui.app import serve_in_thread

    server, thread = serve_in_thread(app)
    return server, thread, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def stop(app, server, thread) -> None:
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, object]]:
    """(app, url, web app) with --api-auth, --gradio-auth from a file and CORS for one origin; no model
    is loaded (access control does not need one)."""
    data = tmp_path_factory.mktemp("locked")
    auth_file = data / "logins.txt"
    auth_file.write_text("ui:pass1, other:pass2\nthird:pass3\n")
    app = make_app(
        data,
        "--api",
        "--api-auth",
        f"{API_USER}:{API_PASSWORD}",
        "--gradio-auth-path",
        str(auth_file),
        "--cors-allow-origins",
        "http://allowed.example,http://also.example",
    )
    server, thread, url = start(app)
    yield app, url, server.config.app
    stop(app, server, thread)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    """(app, url) of a server without passwords, with one output image and some private files in its data
    dir (so refusals are not just files that are missing)."""
    data = tmp_path_factory.mktemp("open")
    app = make_app(data, "--api")
    outputs = data / "outputs" / "txt2img-images" / "2024-01-01"
    outputs.mkdir(parents=True)
    (outputs / "00000-1.png").write_bytes(b"\x89PNG\r\n\x1a\nfake but present")
    (data / "config.json").write_text('{"secret_marker": 1}')
    (data / "models" / "Stable-diffusion").mkdir(parents=True, exist_ok=True)  # the App made it
    (data / "models" / "Stable-diffusion" / "private.safetensors").write_bytes(b"secret_marker")
    server, thread, url = start(app)
    yield app, url
    stop(app, server, thread)


def api_routes(web) -> list[tuple[str, str]]:
    """(method, path) of every /sdapi route the server has, path parameters filled in."""
    from tests.security.routes import flat_routes

    found = []
    for route in flat_routes(web.routes):
        path = getattr(route, "path", "")
        if path.startswith("/sdapi/"):
            for method in sorted(getattr(route, "methods", ()) - {"HEAD"}):
                found.append((method, path.replace("{name}", "x")))
    return found


def test_every_api_route_needs_the_api_password(locked):
    _, url, web = locked
    routes = api_routes(web)
    assert ("POST", "/sdapi/v1/txt2img") in routes and ("GET", "/sdapi/v1/png-info") not in routes
    assert len(routes) > 20
    for method, path in routes:
        response = requests.request(method, url + path, json={}, timeout=30)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    # wrong passwords on a few routes only: more would trip the login throttle (tests/security)
    for auth in ((API_USER, "wrong"), ("ui", "pass1")):  # the UI's login is not the API's
        response = requests.post(f"{url}/sdapi/v1/txt2img", auth=auth, json={}, timeout=30)
        assert response.status_code == 401, auth


def test_the_right_api_password_opens_the_api(locked):
    _, url, _ = locked
    response = requests.get(f"{url}/sdapi/v1/options", auth=(API_USER, API_PASSWORD), timeout=30)
    assert response.status_code == 200 and response.json()["samples_format"] == "png"
    flags = requests.get(f"{url}/sdapi/v1/cmd-flags", auth=(API_USER, API_PASSWORD), timeout=30).json()
    assert flags["api_auth"] == "<hidden>" and API_PASSWORD not in str(flags)  # never handed out
    assert (
        requests.get(
            f"{url}/sdapi/v1/options", headers={"Authorization": "Basic %%%"}, timeout=30
        ).status_code
        == 401
    )


def test_gradio_login_uses_the_auth_file(locked):
    _, url, _ = locked
    assert requests.get(f"{url}/gradio_api/login_check", timeout=30).status_code == 401
    assert (
        requests.post(f"{url}/login", data={"username": "ui", "password": "nope"}, timeout=30).status_code
        == 400
    )
    for user, password in (("ui", "pass1"), ("other", "pass2"), ("third", "pass3")):
        session = requests.Session()
        assert session.post(
            f"{url}/login", data={"username": user, "password": password}, timeout=30
        ).json() == {"success": True}
        assert session.get(f"{url}/gradio_api/login_check", timeout=30).status_code == 200


def test_openapi_docs_are_reachable_with_the_api_password(locked):
    _, url, _ = locked
    auth = (API_USER, API_PASSWORD)
    assert requests.get(f"{url}/docs", timeout=30).status_code == 401
    assert "swagger" in requests.get(f"{url}/docs", auth=auth, timeout=30).text.lower()
    paths = requests.get(f"{url}/openapi.json", auth=auth, timeout=30).json()["paths"]
    assert {"/sdapi/v1/txt2img", "/sdapi/v1/png-info", "/sdapi/v1/extra-single-image"} <= set(paths)


def test_cors_answers_only_the_allowed_origins(locked):
    _, url, _ = locked
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = requests.options(
        f"{url}/sdapi/v1/txt2img", headers={"Origin": "http://also.example", **preflight}, timeout=30
    )
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://also.example"
    other = requests.options(
        f"{url}/sdapi/v1/txt2img", headers={"Origin": "http://evil.example", **preflight}, timeout=30
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    simple = requests.get(
        f"{url}/sdapi/v1/options",
        headers={"Origin": "http://allowed.example"},
        auth=(API_USER, API_PASSWORD),
        timeout=30,
    )
    assert simple.headers["Access-Control-Allow-Origin"] == "http://allowed.example"


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (no client-side normalising of ../ or %2e)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def traversal_paths(data: Path) -> list[str]:
    passwd = "/etc/passwd"
    config = str(data / "config.json")
    model = str(data / "models" / "Stable-diffusion" / "private.safetensors")
    outputs = data / "outputs" / "txt2img-images" / "2024-01-01"
    paths = []
    for prefix in ("/file=", "/gradio_api/file=", "/file/", "/gradio_api/file/"):
        paths += [
            f"{prefix}{passwd}",
            f"{prefix}../../../../../../etc/passwd",
            f"{prefix}..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            f"{prefix}%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            f"{prefix}%252e%252e/%252e%252e/%252e%252e/etc/passwd",
            f"{prefix}{config}",
            f"{prefix}{model}",
            f"{prefix}{outputs}/../../../config.json",
            f"{prefix}{outputs}/%2e%2e/%2e%2e/%2e%2e/config.json",
            f"{prefix}file://{passwd}",
        ]
    for prefix in ("/static/", "/assets/", "/gradio_api/static/", "/favicon.ico/"):
        paths += [
            f"{prefix}../../../../../../etc/passwd",
            f"{prefix}..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            f"{prefix}%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        ]
    return paths


def test_no_file_route_serves_anything_outside_outputs(open_server):
    app, url = open_server
    refused = []
    for path in traversal_paths(app.paths.data_dir):
        status, body = raw_get(url, path)
        assert status in (400, 403, 404), (path, status)
        assert b"root:" not in body and b"secret_marker" not in body, path
        refused.append(path)
    assert len(refused) > 40


def test_outputs_and_gradio_static_files_are_served(open_server):
    app, url = open_server
    image = app.paths.data_dir / "outputs" / "txt2img-images" / "2024-01-01" / "00000-1.png"
    status, body = raw_get(url, f"/gradio_api/file={image}")
    assert status == 200 and body == image.read_bytes()  # the refusals above are not a route that is gone
    assert raw_get(url, "/favicon.ico")[0] == 200


def test_tls_serves_https(tmp_path: Path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    app = make_app(tmp_path, "--nowebui", "--tls-keyfile", str(key), "--tls-certfile", str(cert))
    server, thread, url = start(app)
    try:
        https = url.replace("http://", "https://")
        response = requests.get(f"{https}/sdapi/v1/upscalers", verify=str(cert), timeout=30)
        assert response.status_code == 200 and response.json()[0]["name"] == "None"
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"{url}/sdapi/v1/upscalers", timeout=30)  # plain http is not answered
    finally:
        stop(app, server, thread)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-keyfile", "k.pem"], "both --tls-keyfile and --tls-certfile"),
        (["--gradio-auth-path", "/no/such/file"], "/no/such/file"),
        (["--api-auth", "nocolon"], "username:password"),
    ],
)
def test_bad_access_flags_stop_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_gradio_logins_come_from_flag_and_file(tmp_path: Path):
    logins = tmp_path / "logins"
    logins.write_text("b:2,c:3\n\n d:4:x \n")
    args = parse_args(["--gradio-auth", "a:1", "--gradio-auth-path", str(logins)])
    assert gradio_credentials(args) == (("a", "1"), ("b", "2"), ("c", "3"), ("d", "4:x"))
    assert gradio_credentials(parse_args([])) == ()


@pytest.mark.parametrize(
    ("argv", "ui_auth", "api_auth", "expected"),
    [
        (["--share"], False, False, ["--share", "--gradio-auth"]),
        (["--share"], True, False, None),  # no API is served
        (["--listen", "--api"], True, False, ["--listen", "--api-auth"]),
        (["--server-name", "0.0.0.0", "--nowebui"], False, True, None),
        (["--api"], False, False, None),  # only this machine can reach it
        (["--server-name", "localhost"], False, False, None),
    ],
)
def test_exposed_without_password_warns(argv, ui_auth, api_auth, expected):
    warning = exposure_warning(parse_args(argv), ui_auth, api_auth)
    if expected is None:
        assert warning is None
    else:
        assert warning is not None and all(word in warning for word in expected)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_share_offline_fails_clearly_and_the_server_keeps_serving(tmp_path: Path):
    """The real start-up path (webui.app.serve) with --share and --listen, no network and no password."""
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    code = (
        "import sys; from webui.app import serve; from webui.core.cmd_args import parse_args; "
        "serve(parse_args(sys.argv[1:]))"
    )
    argv = ["--nowebui", "--share", "--listen", "--port", str(port), "--data-dir", str(tmp_path)]
    log = tmp_path / "server.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *argv],
            cwd=REPO_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "Could not create share link" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert "Could not create share link" in text and "local server keeps running" in text
        assert "WARNING" in text and "--share" in text and "--api-auth" in text
        response = requests.get(f"http://127.0.0.1:{port}/sdapi/v1/upscalers", timeout=30)
        assert response.status_code == 200 and process.poll() is None
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(tmp_path / "outputs", ignore_errors=True)
