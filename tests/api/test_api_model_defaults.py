"""Issue 20 #14: a field an API request omits takes the loaded checkpoint's default (its metadata), as the
UI starts from; a field the request sends always wins."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import make_app, make_data_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WANTED = {"width": 64, "height": 72, "steps": 3, "cfg_scale": 5.0, "cfg_rescale": 0.25}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tools.tiny_models import save_tiny_checkpoint
    from webui.app import serve_in_thread

    checkpoint = save_tiny_checkpoint(
        tmp_path_factory.mktemp("meta") / "small-defaults.safetensors",
        metadata={"webui.default_params": json.dumps(WANTED)},
    )
    app = make_app(make_data_dir(tmp_path_factory.mktemp("data"), checkpoint), "--api")
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def generate(url: str, **body: object) -> dict:
    response = requests.post(f"{url}/sdapi/v1/txt2img", json={"prompt": "x", "seed": 5, **body}, timeout=300)
    assert response.status_code == 200, response.text
    return json.loads(response.json()["info"])


def test_omitted_fields_take_the_checkpoints_defaults(url):
    info = generate(url)
    assert {key: info[key] for key in WANTED} == WANTED  # not A1111's fixed 512x512, 50 steps, CFG 7
    assert "Steps: 3," in info["infotexts"][0] and "Size: 64x72" in info["infotexts"][0]


def test_sent_fields_win_even_when_they_equal_the_api_defaults(url):
    info = generate(url, steps=2, width=80, cfg_scale=7.0, cfg_rescale=0.0)
    assert (info["steps"], info["width"], info["height"], info["cfg_scale"]) == (2, 80, 72, 7.0)
    assert info["cfg_rescale"] == 0.0
