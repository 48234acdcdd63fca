"""The img2img scripts A1111 ships, on the plugin API, run on the demo model (results that mean
something): SD upscale (model or plain upscale, then tiled img2img) and Loopback. A counting extension
records each img2img run the scripts make."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
from PIL import Image

from tests.conftest import make_app
from tests.plugins.conftest import extension_module, write_extension
from tests.upscaler_files import write_compact
from tools.demo_model.score import read_image
from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img, Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHECKPOINT = Path(__file__).resolve().parents[2] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
PROMPT = "a large red circle in the center, blue background"
MODEL = "tiny-compact-x2"
COUNTER = """
from webui.plugins import api

CALLS = []


class Counter(api.Script):
    def title(self):
        return "Counter"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def process(self, p, *args):
        CALLS.append((round(p.denoising_strength, 4), [image.copy() for image in p.init_images], p.seed))
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("scripts-data")
    write_compact(data / "models" / "RealESRGAN" / f"{MODEL}.safetensors", scale=2)
    write_extension(data, "counter", {"scripts/counter.py": COUNTER})
    app = make_app(data, "--ckpt", str(CHECKPOINT))
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


@pytest.fixture(scope="module")
def picture(app: Any) -> Image.Image:
    params = Txt2Img(prompt=PROMPT, seed=11, width=64, height=64, steps=12, cfg_scale=7.0, cfg_rescale=0.7)
    image = app.generate(params, save_images=False).images[0]
    assert read_image(image).background == "blue"
    return image


def _img2img(picture: Image.Image, **fields: Any) -> Img2Img:
    base = Img2Img(
        prompt=PROMPT, seed=5, width=64, height=64, steps=10, cfg_scale=7.0, cfg_rescale=0.7,
        init_images=(picture,), denoising_strength=0.4,
    )  # fmt: skip
    return base.replace(**fields)


def _calls(app: Any) -> list[Any]:
    calls = extension_module(app, "Counter").CALLS
    seen = list(calls)
    calls.clear()
    return seen


def test_sd_upscale_redraws_the_upscaled_picture_tile_by_tile(app, picture):
    _calls(app)
    params = _img2img(picture, script_name="SD upscale", script_args=("", 16, "Lanczos", 2.0))
    result = app.generate(params)
    calls = _calls(app)
    # 128 wide with 64-pixel tiles overlapping by at least 16: 3 tiles a side, 9 runs, seeds counting up.
    assert len(calls) == 9
    assert all([image.size for image in init] == [(64, 64)] for _, init, _ in calls)
    assert [seed for _, _, seed in calls] == list(range(5, 14))
    assert (
        calls[4][1][0].tobytes()
        == picture.resize((128, 128), Image.Resampling.LANCZOS).crop((32, 32, 96, 96)).tobytes()
    )  # the middle tile is the middle of the upscaled input
    (image,) = result.images
    assert image.size == (128, 128)
    fields = infotext.parse(result.infotexts[0])
    assert (fields["SD upscale overlap"], fields["SD upscale upscaler"]) == ("16", "Lanczos")
    # Redrawn, yet the same picture: blue background, a red shape, not merely the Lanczos copy.
    reading = read_image(image.resize((64, 64), Image.Resampling.LANCZOS))
    assert (reading.background, reading.color) == ("blue", "red")
    plain = numpy.asarray(picture.resize((128, 128), Image.Resampling.LANCZOS), dtype=float)
    assert numpy.abs(numpy.asarray(image, dtype=float) - plain).mean() > 1.0
    assert len(result.paths) == 1  # the combined picture is saved, its tiles are not


def test_sd_upscale_with_a_model_upscaler_and_bad_values(app, picture):
    _calls(app)
    result = app.generate(
        _img2img(picture, script_name="SD upscale", script_args=("", 0, MODEL, 1.5)), save_images=False
    )
    assert result.images[0].size == (96, 96)  # 64 * 1.5
    assert len(_calls(app)) == 4  # 2 x 2 tiles of 64 over 96, no overlap asked
    assert infotext.parse(result.infotexts[0])["SD upscale upscaler"] == MODEL
    with pytest.raises(InvalidParameter, match="unknown upscaler"):
        app.generate(_img2img(picture, script_name="SD upscale", script_args=("", 16, "ESRGAN_4x", 2.0)))


def test_loopback_feeds_each_result_back_with_the_strength_curve(app, picture):
    _calls(app)
    params = _img2img(picture, denoising_strength=0.6, script_name="Loopback", script_args=(3, 0.2, "Linear"))
    result = app.generate(params)
    calls = _calls(app)
    assert [strength for strength, _, _ in calls] == [0.6, 0.4, 0.2]
    assert [seed for _, _, seed in calls] == [5, 6, 7]
    grid, *loops = result.images
    assert len(loops) == 3 and grid.size == (192, 64)
    # Each run's input is the previous run's picture.
    assert calls[1][1][0].tobytes() == loops[0].tobytes()
    assert calls[2][1][0].tobytes() == loops[1].tobytes()
    fields = infotext.parse(result.infotexts[1])
    assert (fields["Final denoising strength"], fields["Denoising curve"]) == ("0.2", "Linear")
    assert all(read_image(image).background == "blue" for image in loops)
