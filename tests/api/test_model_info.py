"""The API's `info` names the checkpoint (and VAE) that made the images, also when the request overrides
the checkpoint for itself (override_settings with override_settings_restore_afterwards, the default)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import make_app, make_data_dir
from webui.core import infotext

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 5}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[object, str]]:
    """(app, base_url) over two different tiny checkpoints, "tiny-sd1" loaded."""
    from tools.tiny_models import save_tiny_checkpoint
    from webui.app import serve_in_thread

    other = save_tiny_checkpoint(tmp_path_factory.mktemp("other") / "other-model.safetensors", "sd1", seed=1)
    app = make_app(make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file, other), "--api")
    app.select_checkpoint("tiny-sd1")
    server, thread = serve_in_thread(app)
    yield app, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def test_info_names_the_checkpoint_a_request_overrode(served):
    app, url = served
    payload = {**SMALL, "prompt": "x", "seed": 3, "override_settings": {"sd_model_checkpoint": "other-model"}}
    response = requests.post(f"{url}/sdapi/v1/txt2img", json=payload, timeout=300)
    assert response.status_code == 200, response.text
    info = json.loads(response.json()["info"])
    written = infotext.parse(info["infotexts"][0])
    assert written["Model"] == "other-model"
    other = next(entry for entry in app.registry.entries if entry.model_name == "other-model")
    assert (info["sd_model_name"], info["sd_model_hash"]) == ("other-model", app.registry.short_hash(other))
    assert info["sd_model_hash"] == written["Model hash"]
    assert info["sd_vae_name"] is None  # the checkpoint's own VAE
    # put back afterwards, and a plain request names the loaded one again
    assert app.current_checkpoint_title().startswith("tiny-sd1")
    plain = requests.post(f"{url}/sdapi/v1/txt2img", json={**SMALL, "prompt": "x"}, timeout=300)
    assert json.loads(plain.json()["info"])["sd_model_name"] == "tiny-sd1"
