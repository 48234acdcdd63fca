"""/sdapi/v1/scripts, /script-info, /extensions and script_name/script_args/alwayson_scripts in
txt2img, on a real API server (--nowebui) with the example extension installed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import make_app, make_data_dir
from tests.plugins.conftest import add_example, write_extension
from webui.core import infotext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"prompt": "a cat", "width": 64, "height": 64, "steps": 1, "sampler_name": "Euler", "seed": 4}
ROUTE = """
from webui.plugins import api

def add_routes(demo, app):
    app.add_api_route("/example/ping", lambda: {"pong": demo is None}, methods=["GET"])

api.on_app_started(add_routes)
"""


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[str]:
    from webui.app import serve_in_thread

    root = make_data_dir(tmp_path_factory.mktemp("script-api"), tiny_sd1_file)
    add_example(root)
    write_extension(root, "pinger", {"scripts/routes.py": ROUTE})
    app = make_app(root, "--nowebui")
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def post(url: str, **payload: Any) -> requests.Response:
    return requests.post(f"{url}/sdapi/v1/txt2img", json={**SMALL, **payload}, timeout=120)


def test_script_lists_and_extensions(api_url):
    scripts = requests.get(f"{api_url}/sdapi/v1/scripts", timeout=30).json()
    for kind in ("txt2img", "img2img"):
        assert {"x/y/z plot", "prompt matrix", "prompts from file or textbox", "watermark"} <= set(
            scripts[kind]
        )
    info = {
        (entry["name"], entry["is_img2img"]): entry
        for entry in requests.get(f"{api_url}/sdapi/v1/script-info", timeout=60).json()
    }
    watermark = info["watermark", False]
    assert watermark["is_alwayson"] and [arg["label"] for arg in watermark["args"]] == [
        "Add a watermark",
        "Watermark text",
    ]
    assert [arg["value"] for arg in watermark["args"]] == [False, "made with webui"]
    xyz = info["x/y/z plot", True]
    assert (
        not xyz["is_alwayson"]
        and xyz["args"][0]["label"] == "X type"
        and "Denoising" in xyz["args"][0]["choices"]
    )
    assert "Denoising" in info["x/y/z plot", False]["args"][0]["choices"]  # txt2img's hires fix has it too
    extensions = {
        entry["name"]: entry for entry in requests.get(f"{api_url}/sdapi/v1/extensions", timeout=30).json()
    }
    assert extensions["example-watermark"]["enabled"] and "xyz_grid" in extensions
    assert set(extensions["pinger"]) == {
        "name",
        "remote",
        "branch",
        "commit_hash",
        "version",
        "commit_date",
        "enabled",
    }


def test_extension_routes_from_app_started(api_url):
    assert requests.get(f"{api_url}/example/ping", timeout=30).json() == {"pong": True}  # no UI: demo None


def test_script_and_alwayson_args_round_trip(api_url):
    response = post(
        api_url,
        script_name="x/y/z plot",
        script_args=["Steps", "1, 2", "Nothing", "", "Nothing", "", True, False, True, 0],
        alwayson_scripts={"Watermark": {"args": [True, "via api"]}, "ControlNet": {"args": []}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    texts = json.loads(body["info"])["infotexts"]
    assert len(body["images"]) == len(texts) == 3  # the grid and two cells
    assert [infotext.parse(text)["Steps"] for text in texts[1:]] == ["1", "2"]
    assert all(infotext.parse(text)["Watermark"] == "via api" for text in texts)
    assert infotext.parse(texts[0])["X Type"] == "Steps"


def test_bad_script_requests_are_422(api_url):
    unknown = post(api_url, script_name="no such script")
    assert unknown.status_code == 422
    assert "X/Y/Z plot" in unknown.json()["detail"] and "no such script" in unknown.json()["detail"]
    assert post(api_url, alwayson_scripts={"Nope": {"args": []}}).status_code == 422
    shape = post(api_url, alwayson_scripts={"Watermark": [True]})
    assert shape.status_code == 422 and "args" in shape.json()["detail"]
