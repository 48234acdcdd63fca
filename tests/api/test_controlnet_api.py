"""sd-webui-controlnet's API on a real server: /controlnet routes and ControlNet units in alwayson_scripts."""

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
from PIL import Image, ImageDraw

from tests.conftest import make_app, make_data_dir
from tools.tiny_controlnet import save_tiny_controlnet
from tools.tiny_models import tiny_pipeline

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 5, "seed": 3, "sampler_name": "Euler"}


def png_base64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB")).astype(int)


def disc() -> Image.Image:
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill="black")
    return image


DISC = png_base64(disc())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    """A server with the tiny SD1 checkpoint and a tiny ControlNet for it in models/ControlNet."""
    from webui.app import serve_in_thread

    data = make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file)
    save_tiny_controlnet(data / "models" / "ControlNet" / "tiny-cn.safetensors", tiny_pipeline("sd1"), seed=1)
    app = make_app(data, "--api")
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def post(url: str, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=300)


def unit(**fields: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "module": "canny",
        "model": "tiny-cn",
        "image": DISC,
        "processor_res": 64,
        **fields,
    }


def test_model_list_names_models_with_their_hash(server: tuple[Any, str]) -> None:
    app, url = server
    body = requests.get(f"{url}/controlnet/model_list", timeout=30).json()
    assert body["model_list"][0] == app.manager.controlnets.find("tiny-cn").title()
    assert body["model_list"][0].startswith("tiny-cn [")
    # then the install's demo ControlNet (the data dir's own come first)
    assert [title.split(" [")[0] for title in body["model_list"][1:]] == ["demo-shapes-canny"]


def test_module_list_with_names_aliases_and_sliders(server: tuple[Any, str]) -> None:
    _, url = server
    body = requests.get(f"{url}/controlnet/module_list", timeout=30).json()
    assert body["module_list"][:3] == ["none", "invert", "canny"]
    sliders = body["module_detail"]["canny"]["sliders"]
    assert [(s["name"], s["value"]) for s in sliders] == [
        ("Preprocessor Resolution", 512),
        ("Canny Low Threshold", 100),
        ("Canny High Threshold", 200),
    ]
    aliases = requests.get(f"{url}/controlnet/module_list", params={"alias_names": "true"}, timeout=30).json()
    assert (
        "invert (from white bg & black line)" in aliases["module_list"]
        and "depth_midas" in aliases["module_list"]
    )


def test_detect_runs_the_preprocessor(server: tuple[Any, str]) -> None:
    _, url = server
    body = {
        "controlnet_module": "canny",
        "controlnet_input_images": [f"data:image/png;base64,{DISC}"],
        "controlnet_processor_res": 128,
    }
    response = post(url, "/controlnet/detect", body)
    assert response.status_code == 200, response.text
    assert response.json()["info"] == "Success"
    edges = decode(response.json()["images"][0])
    assert edges.shape == (128, 128, 3) and set(np.unique(edges)) == {0, 255}
    assert edges[60:68, 60:68].max() == 0 and edges[:, 20:30].max() == 255  # outline, not the inside


def test_detect_errors_name_the_problem(server: tuple[Any, str]) -> None:
    _, url = server
    unknown = post(
        url, "/controlnet/detect", {"controlnet_module": "sharpen", "controlnet_input_images": [DISC]}
    )
    assert unknown.status_code == 422 and "sharpen" in unknown.json()["detail"]
    missing = post(
        url, "/controlnet/detect", {"controlnet_module": "depth_midas", "controlnet_input_images": [DISC]}
    )
    assert missing.status_code == 404
    assert (
        "dpt_hybrid-midas-501f0c75.pt" in missing.json()["detail"]
        and "annotators/midas" in missing.json()["detail"]
    )


def test_txt2img_with_a_unit_follows_it_and_writes_the_infotext(server: tuple[Any, str]) -> None:
    app, url = server
    plain = post(url, "/sdapi/v1/txt2img", SMALL).json()
    scripts = {"ControlNet": {"args": [unit(), {"enabled": False}]}}
    controlled = post(url, "/sdapi/v1/txt2img", {**SMALL, "alwayson_scripts": scripts})
    assert controlled.status_code == 200, controlled.text
    assert np.abs(decode(controlled.json()["images"][0]) - decode(plain["images"][0])).max() > 10
    infotext = json.loads(controlled.json()["info"])["infotexts"][0]
    title = app.manager.controlnets.find("tiny-cn").title()
    assert (
        f'ControlNet 0: "Module: canny, Model: {title}, Weight: 1.0, Resize Mode: Crop and Resize,'
        in infotext
    )
    assert "ControlNet 1" not in infotext
    zero = post(
        url, "/sdapi/v1/txt2img", {**SMALL, "alwayson_scripts": {"controlnet": {"args": [unit(weight=0)]}}}
    )
    assert np.array_equal(decode(zero.json()["images"][0]), decode(plain["images"][0]))


def test_img2img_unit_without_image_uses_the_input(server: tuple[Any, str]) -> None:
    _, url = server
    body = {**SMALL, "init_images": [DISC], "denoising_strength": 0.8}
    plain = post(url, "/sdapi/v1/img2img", body).json()
    scripts = {"ControlNet": {"args": [unit(image=None, module="invert", control_mode=2, resize_mode=0)]}}
    controlled = post(url, "/sdapi/v1/img2img", {**body, "alwayson_scripts": scripts})
    assert controlled.status_code == 200, controlled.text
    assert np.abs(decode(controlled.json()["images"][0]) - decode(plain["images"][0])).max() > 10
    infotext = json.loads(controlled.json()["info"])["infotexts"][0]
    assert "Resize Mode: Just Resize" in infotext and "Control Mode: ControlNet is more important" in infotext


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"model": "canny-v11"}, 404, "'canny-v11' not found"),
        ({"control_mode": "Loud"}, 422, "args[0].control_mode"),
        ({"image": "not base64!"}, 422, "args[0].image"),
        ({"mask": DISC}, 422, "args[0].mask"),
        ({"image": None}, 422, "ControlNet unit 0 needs an image"),
    ],
)
def test_bad_units_are_refused_with_the_field_named(
    server: tuple[Any, str], fields: dict[str, Any], status: int, words: str
) -> None:
    _, url = server
    response = post(
        url, "/sdapi/v1/txt2img", {**SMALL, "alwayson_scripts": {"ControlNet": {"args": [unit(**fields)]}}}
    )
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
