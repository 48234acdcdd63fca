"""Outpainting mk2 and Poor man's outpainting (A1111's img2img scripts on the plugin API) on the demo
model: through the Script API (App.generate with script_name/script_args) and through a real server's
/sdapi/v1/img2img. A picture with a plain green background and a red circle grows to the right; the new
strip must come out green, the old picture stay as it was. A counting extension records each inpaint
run the scripts make. The matched noise of mk2 is checked on its own, from numbers."""

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

from tests.conftest import make_app
from tests.plugins.conftest import extension_module, write_extension
from tools.demo_model.data import PALETTE
from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img
from webui.plugins.loader import import_script_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
MK2 = "Outpainting mk2"
POOR = "Poor man's outpainting"
GREEN = PALETTE["green"]
PROMPT = "a small red circle on the left, green background"
COUNTER = """
from webui.plugins import api

CALLS = []


class Counter(api.Script):
    def title(self):
        return "Counter"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def process(self, p, *args):
        CALLS.append({
            "size": (p.width, p.height), "inputs": [image.size for image in p.init_images], "seed": p.seed,
            "mask": p.mask.copy(), "fill": p.inpainting_fill, "blur": p.mask_blur, "batch": p.batch_size,
        })
"""


def source(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A plain green background with a red circle on the left (colours of the demo model's palette)."""
    image = Image.new("RGB", size, GREEN)
    ImageDraw.Draw(image).ellipse((8, 20, 32, 44), fill=PALETTE["red"])
    return image


def green_distance(pixels: np.ndarray) -> float:
    """Mean RGB distance of the pixels from the background green (red is ~230 away, black ~175)."""
    return float(np.linalg.norm(pixels.astype(float) - GREEN, axis=-1).mean())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """(app, base_url): the demo model behind a real server, with the counting extension."""
    from webui.app import serve_in_thread

    data = tmp_path_factory.mktemp("outpainting-data")
    write_extension(data, "counter", {"scripts/counter.py": COUNTER})
    app = make_app(data, "--api", "--ckpt", str(CHECKPOINT))
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def _img2img(
    script: str, args: tuple[Any, ...], picture: Image.Image | None = None, **fields: Any
) -> Img2Img:
    base = Img2Img(
        prompt=PROMPT, seed=5, width=64, height=64, steps=8, cfg_scale=7.0, denoising_strength=0.5,
        init_images=(picture or source(),), script_name=script, script_args=args,
    )  # fmt: skip
    return base.replace(**fields)


def _calls(app: Any) -> list[dict[str, Any]]:
    calls = extension_module(app, "Counter").CALLS
    seen = list(calls)
    calls.clear()
    return seen


def _check_grown_right(image: Image.Image, picture: Image.Image) -> None:
    """96 px of picture grown by 32 to the right: the new strip green, the left of the old picture kept."""
    assert image.size == (128, 64)
    pixels = np.asarray(image)
    assert green_distance(pixels[:, 96:]) < 30
    assert np.array_equal(pixels[:, :48], np.asarray(picture)[:, :48])  # far from the seam: untouched


def test_mk2_grows_the_picture_right_with_the_background_colour(served):
    app, _ = served
    _calls(app)
    picture = source()
    result = app.generate(_img2img(MK2, ("", 32, 2, ["right"], 1.0, 0.05), picture))
    (image,) = result.images
    _check_grown_right(image, picture)
    (call,) = _calls(app)  # one side, one inpaint run: the 64-px window at the right end
    assert (call["size"], call["inputs"], call["fill"], call["blur"]) == ((64, 64), [(64, 64)], 1, 8)
    mask = np.asarray(call["mask"])  # the window is x 64..128: the seam sits 2 px inside the picture
    assert (mask[:, 30:] == 255).all() and (mask[:, :30] == 0).all()
    fields = infotext.parse(result.infotexts[0])  # A1111 adds no keys of its own: the inpaint's
    assert (fields["Mask blur"], fields["Denoising strength"], fields["Size"]) == ("8", "0.5", "64x64")
    assert "Masked content" not in fields  # "original", the default, is not written
    assert len(result.paths) == 1  # the grown picture is saved, not the window


def test_mk2_every_direction_with_a_batch(served):
    app, _ = served
    _calls(app)
    picture = source((64, 64))
    result = app.generate(
        _img2img(MK2, ("", 32, 1, list(reversed(["left", "right", "up", "down"])), 1.0, 0.5), picture,
                 batch_size=2),
        save_images=False,
    )  # fmt: skip
    grid, *images = result.images
    assert [image.size for image in images] == [(128, 128)] * 2 and grid.size == (256, 128)
    assert result.seeds == (5, 5, 6)
    calls = _calls(app)  # left, right, up, down in A1111's order, the batch of two each time
    assert [call["size"] for call in calls] == [(64, 64), (64, 64), (128, 64), (128, 64)]
    assert all(call["batch"] == 2 and call["seed"] == 5 for call in calls)
    for image in images:
        pixels = np.asarray(image)
        assert np.array_equal(pixels[48:80, 48:80], np.asarray(picture)[16:48, 16:48])  # the middle kept
        border = np.concatenate([pixels[:, :24].reshape(-1, 3), pixels[:, 104:].reshape(-1, 3)])
        assert green_distance(border) < 40
    assert images[0].tobytes() != images[1].tobytes()  # two seeds, two pictures


def test_poor_mans_outpainting_inpaints_the_tiles_of_the_new_border(served):
    app, _ = served
    _calls(app)
    picture = source()
    result = app.generate(_img2img(POOR, (32, 2, 0, ["right"]), picture), save_images=False)
    (image,) = result.images
    _check_grown_right(image, picture)
    (call,) = _calls(app)  # tiles of 64 over 128 overlapping by 32 start at 0, 32, 64: only the last grows
    assert (call["size"], call["fill"], call["blur"]) == ((64, 64), 0, 4)
    fields = infotext.parse(result.infotexts[0])
    assert (fields["Mask blur"], fields["Masked content"], fields["Denoising strength"]) == (
        "4",
        "fill",
        "0.5",
    )

    _calls(app)
    result = app.generate(
        _img2img(POOR, (32, 2, "latent nothing", ["left", "right", "up", "down"]), source((64, 64)), steps=4),
        save_images=False,
    )
    assert result.images[0].size == (128, 128)
    calls = _calls(app)  # a 3 x 3 grid of tiles less the middle one, inside the old picture
    assert [call["seed"] for call in calls] == list(range(5, 13))
    assert all(call["fill"] == 3 for call in calls)


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        (MK2, ("", 0, 2, ["right"], 1.0, 0.05), "Outpainting mk2: Pixels to expand must be between 1 and"),
        (MK2, ("", 32, 2, [], 1.0, 0.05), "Outpainting mk2: choose at least one Outpainting direction"),
        (MK2, ("", 128, 8, ["right"], 1.0, 0.05), "Outpainting mk2: a Width of 64 px does not reach"),
        (POOR, (32, 2, "blur", ["up"]), "Poor man's outpainting: unknown Masked content 'blur'"),
        (POOR, (64, 2, 0, ["up"]), r"overlap by Pixels to expand \(64\), which must be below the tile Width"),
    ],
)
def test_arguments_that_cannot_work_are_refused(served, script, args, message):
    app, _ = served
    with pytest.raises(InvalidParameter, match=message):
        app.generate(_img2img(script, args), save_images=False)


def _b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _post(url: str, script: str, args: list[Any]) -> requests.Response:
    payload = {
        "prompt": PROMPT, "seed": 5, "width": 64, "height": 64, "steps": 8, "cfg_scale": 7,
        "denoising_strength": 0.5, "init_images": [_b64(source())],
        "script_name": script, "script_args": args,
    }  # fmt: skip
    return requests.post(f"{url}/sdapi/v1/img2img", json=payload, timeout=120)


def test_both_scripts_through_the_img2img_route(served):
    _, url = served
    listed = requests.get(f"{url}/sdapi/v1/scripts", timeout=30).json()
    assert {"outpainting mk2", "poor man's outpainting"} <= set(listed["img2img"])
    assert "outpainting mk2" not in listed["txt2img"]
    info = {
        (entry["name"], entry["is_img2img"]): entry
        for entry in requests.get(f"{url}/sdapi/v1/script-info", timeout=60).json()
    }
    # the controls A1111 has, in its order (the order of script_args)
    assert [arg["label"] for arg in info["outpainting mk2", True]["args"]] == [
        None, "Pixels to expand", "Mask blur", "Outpainting direction",
        "Fall-off exponent (lower=higher detail)", "Color variation",
    ]  # fmt: skip
    poor = info["poor man's outpainting", True]["args"]
    assert [arg["label"] for arg in poor] == [
        "Pixels to expand", "Mask blur", "Masked content", "Outpainting direction",
    ]  # fmt: skip
    assert poor[2]["choices"] == ["fill", "original", "latent noise", "latent nothing"]
    for script, args, blur in (
        (MK2, [None, 32, 2, ["right"], 1, 0.05], "8"),
        (POOR, [32, 2, 0, ["right"]], "4"),
    ):
        response = _post(url, script, args)
        assert response.status_code == 200, response.text
        body = response.json()
        image = Image.open(io.BytesIO(base64.b64decode(body["images"][0]))).convert("RGB")
        _check_grown_right(image, source())
        assert infotext.parse(json.loads(body["info"])["infotexts"][0])["Mask blur"] == blur

    for args, message in (
        ([None, 0, 2, ["right"], 1, 0.05], "Pixels to expand must be between 1 and"),
        ([None, 32, 2, [], 1, 0.05], "choose at least one Outpainting direction"),
    ):
        response = _post(url, MK2, args)
        assert response.status_code == 422 and message in response.text, response.text


@pytest.fixture(scope="module")
def mk2_module() -> Any:
    path = ROOT / "extensions-builtin" / "outpainting_mk2" / "scripts" / "outpainting_mk2.py"
    return import_script_file("_test_outpainting_mk2", path)


def _two_colour_texture() -> tuple[np.ndarray, np.ndarray]:
    """A 64 x 128 picture whose left 96 columns are random 4-px blocks of red and blue; the mask (1 =
    fill) covers the right 32."""
    blocks = np.random.default_rng(1).random((16, 24)) > 0.5
    picture = np.zeros((64, 128, 3))
    picture[:, :96] = np.where(blocks.repeat(4, 0).repeat(4, 1)[..., None], (0.9, 0.1, 0.1), (0.1, 0.2, 0.9))
    mask = np.zeros((64, 128))
    mask[:, 96:] = 1
    return picture, mask


def test_matched_noise_takes_the_colours_of_the_picture(mk2_module):
    picture, mask = _two_colour_texture()
    filled = mk2_module.matched_noise(picture, mask, 1.0, 0.05)
    assert np.array_equal(filled[:, :96], picture[:, :96])  # the known part is kept exactly
    noise = filled[:, 96:]
    red_share = (noise[..., 0] > 0.5).mean()
    assert abs(red_share - (picture[:, :96, 0] > 0.5).mean()) < 0.02  # the picture's histogram
    assert 0.3 < red_share < 0.7  # and noise, not one flat colour
    plain = np.zeros_like(picture)
    plain[:, :96] = np.asarray(GREEN) / 255
    filled_plain = mk2_module.matched_noise(plain, mask, 1.0, 0.05)
    assert np.allclose(filled_plain[:, 96:], np.asarray(GREEN) / 255)  # a plain background: its colour


def test_matched_noise_fall_off_and_colour_variation(mk2_module):
    picture, mask = _two_colour_texture()

    def roughness(falloff: float) -> float:
        noise = mk2_module.matched_noise(picture, mask, falloff, 0.05)[:, 96:]
        return float(np.abs(np.diff(noise, axis=0)).mean() + np.abs(np.diff(noise, axis=1)).mean())

    # "lower = higher detail": the noise gets smoother as the exponent grows
    assert roughness(0.0) > roughness(1.0) > roughness(4.0)
    # Colour variation 0: grey noise, the channels move together, so a pixel is red or blue; 1: each
    # channel on its own, so pixels high in both R and B (magenta) or in neither appear.
    grey = mk2_module.matched_noise(picture, mask, 1.0, 0.0)[:, 96:]
    colourful = mk2_module.matched_noise(picture, mask, 1.0, 1.0)[:, 96:]

    def mixed(noise: np.ndarray) -> float:
        return float(((noise[..., 0] > 0.5) == (noise[..., 2] > 0.5)).mean())

    assert mixed(grey) == 0.0 and mixed(colourful) > 0.3
