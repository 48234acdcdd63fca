"""The fixture A1111 extensions through the API of a real server: their route, their scripts by name."""

from __future__ import annotations

import json

import pytest
import requests

from webui.core import infotext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 5, "sampler_name": "Euler", "seed": 5}


def txt2img(url: str, **payload) -> dict:
    response = requests.post(f"{url}/sdapi/v1/txt2img", json={**SMALL, **payload}, timeout=300)
    assert response.status_code == 200, response.text
    return json.loads(response.json()["info"])


def test_on_app_started_route_reads_shared_views(compat_server):
    app, url = compat_server
    body = requests.get(f"{url}/hello-api/greet", timeout=30).json()
    assert body["greeting"] == "bonjour"  # the extension's preload.py flag, through shared.cmd_opts
    assert body["samplers"] >= 10
    assert body["models_path"] == str(app.plugins.user_dir.parent / "models")
    assert body["suffix_setting"] == "in watercolor"  # another extension's option, read in a request


def test_scripts_are_listed_with_their_args(compat_server):
    _, url = compat_server
    scripts = requests.get(f"{url}/sdapi/v1/scripts", timeout=30).json()
    assert "seed variations" in scripts["txt2img"] and "seed variations" not in scripts["img2img"]
    info = requests.get(f"{url}/sdapi/v1/script-info", timeout=30).json()
    suffix = next(item for item in info if item["name"] == "prompt suffix" and not item["is_img2img"])
    assert suffix["is_alwayson"] and [arg["label"] for arg in suffix["args"]] == [
        "Append the suffix",
        "Suffix (empty: the setting)",
    ]


def test_always_on_script_by_api(compat_server):
    _, url = compat_server
    info = txt2img(url, prompt="a cat", alwayson_scripts={"Prompt suffix": {"args": [True, "at night"]}})
    fields = infotext.parse(info["infotexts"][0])
    assert (fields["Prompt"], fields["Prompt suffix"]) == ("a cat, at night", "at night")


def test_selectable_script_by_api(compat_server):
    _, url = compat_server
    info = txt2img(url, prompt="a dog", script_name="seed variations", script_args=[2])
    assert info["all_seeds"] == [5, 6]
    assert [infotext.parse(text)["Variation"] for text in info["infotexts"]] == ["1 of 2", "2 of 2"]


def test_extra_network_tag_by_api(compat_server):
    _, url = compat_server
    info = txt2img(url, prompt="a dog <colour:red>")
    fields = infotext.parse(info["infotexts"][0])
    assert fields["Colour net"] == "red:1.0" and "<colour" not in fields["Prompt"]
