"""Variation seeds, seed resize, noise source, eta and ENSD through /sdapi/v1/txt2img on a real server:
the tiny checkpoint for the fields and the info JSON, the shipped demo model for a variation that means
something (strength 0.5 lies between the seed's image and the subseed's)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from tests.conftest import make_app

CHECKPOINT = Path(__file__).resolve().parents[2] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
SMALL = {"prompt": "a cat", "width": 64, "height": 64, "steps": 2, "cfg_scale": 5, "seed": 3}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def txt2img(url: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{url}/sdapi/v1/txt2img", json=payload, timeout=300)
    assert response.status_code == 200, response.text
    body = response.json()
    return {**body, "info": json.loads(body["info"])}


def pixels(body: dict[str, Any]) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).convert("RGB"), int)


def test_a1111s_variation_and_eta_fields_are_used_and_reported(running_app: Any) -> None:
    _, url = running_app
    # A1111's own test payload sends eta 0 with Euler a and -1 for "no seed resize"
    payload = {
        **SMALL,
        "sampler_name": "Euler a",
        "eta": 0,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
    }
    varied = txt2img(url, {**payload, "subseed": 77, "subseed_strength": 0.5, "batch_size": 2})
    info = varied["info"]
    assert (info["seed"], info["all_seeds"]) == (3, [3, 3])
    assert (info["subseed"], info["all_subseeds"], info["subseed_strength"]) == (77, [77, 78], 0.5)
    assert "Variation seed: 78, Variation seed strength: 0.5" in info["infotexts"][1]
    assert "Eta: 0, " in info["infotexts"][0] and "Seed resize from" not in info["infotexts"][0]
    plain = txt2img(url, payload)["info"]
    assert plain["subseed_strength"] == 0 and plain["all_subseeds"][0] >= 0  # a random one, resolved
    assert "Variation seed" not in plain["infotexts"][0]


def test_noise_options_for_one_request(running_app: Any) -> None:
    _, url = running_app
    payload = {**SMALL, "sampler_name": "Euler a", "seed_resize_from_w": 128, "seed_resize_from_h": 64}
    gpu = txt2img(url, payload)
    cpu = txt2img(
        url, {**payload, "override_settings": {"randn_source": "CPU", "eta_noise_seed_delta": 31337}}
    )
    text = cpu["info"]["infotexts"][0]
    assert "RNG: CPU" in text and "ENSD: 31337" in text and "Seed resize from: 128x64" in text
    assert "RNG" not in gpu["info"]["infotexts"][0] and not np.array_equal(pixels(gpu), pixels(cpu))
    response = requests.post(
        f"{url}/sdapi/v1/txt2img", json={**SMALL, "override_settings": {"randn_source": "AMD"}}, timeout=60
    )
    assert response.status_code in (400, 422) and "randn_source" in response.text


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from webui.app import serve_in_thread

    app = make_app(tmp_path_factory.mktemp("demo-noise"), "--api", "--ckpt", str(CHECKPOINT))
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def test_variation_strength_half_lies_between_the_seed_and_the_subseed_on_the_demo_model(
    demo_url: str,
) -> None:
    base = {"prompt": "a red circle on a blue background", "width": 64, "height": 64, "steps": 12}
    base |= {"cfg_scale": 7, "sampler_name": "Euler", "seed": 11, "subseed": 12}
    ends = [pixels(txt2img(demo_url, {**base, "subseed_strength": s})) for s in (0.0, 1.0)]
    middle = pixels(txt2img(demo_url, {**base, "subseed_strength": 0.5}))
    assert np.array_equal(ends[1], pixels(txt2img(demo_url, {**base, "seed": 12})))  # 1: the subseed's image
    assert not np.array_equal(middle, ends[0]) and not np.array_equal(middle, ends[1])
    distance = [np.abs(middle - end).mean() for end in ends]
    assert max(distance) < np.abs(ends[0] - ends[1]).mean()  # nearer to each end than the ends are apart
