"""Hires fix on the shipped demo model: the 2x second pass (64 → 128) still draws the caption's shape
colour and position, for a latent and a pixel upscaler (scored with the demo scorer on the result scaled
back to the 64x64 it reads)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import make_app
from tools.demo_model.evaluate import eval_cases
from tools.demo_model.score import accuracy, judge, read_image
from webui.core.params import Txt2Img

CHECKPOINT = Path(__file__).resolve().parents[2] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
SAMPLE = 8

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    app = make_app(tmp_path_factory.mktemp("demo-hires"), "--ckpt", str(CHECKPOINT))
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


@pytest.mark.parametrize(("upscaler", "denoising"), [("Latent", 0.55), ("Lanczos", 0.4)])
def test_hires_fix_at_2x_still_follows_the_captions_colour_and_position(
    app, upscaler: str, denoising: float
) -> None:
    marks = []
    for case in eval_cases(seed=0, count=SAMPLE):
        params = Txt2Img(
            prompt=case.caption, seed=case.seed, width=64, height=64, steps=20, cfg_scale=7.0,
            cfg_rescale=0.7, enable_hr=True, hr_scale=2.0, hr_upscaler=upscaler, hr_second_pass_steps=10,
            denoising_strength=denoising,
        )  # fmt: skip
        result = app.generate(params, save_images=False)
        image = result.images[0]
        assert image.size == (128, 128)
        marks.append(judge(read_image(image.resize((64, 64), Image.Resampling.BOX)), case.combo))
    scores = accuracy(marks)
    assert scores["color"] >= 0.75 and scores["position"] >= 0.75, scores
