"""Live previews: A1111's "Approx cheap" latent → RGB, the display period, and the hook in a real run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from PIL import Image

from tools.tiny_models import TinyCheckpoint
from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate
from webui.engine.sampling.previews import (
    LATENT_RGB_FACTORS,
    LatentPreview,
    PreviewReporter,
    latent_to_image,
    preview_due,
)
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def expected_pixel(weights: tuple[float, float, float]) -> tuple[int, ...]:
    return tuple(min(max(round((1.0 + w) * 127.5), 0), 255) for w in weights)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_each_latent_channel_maps_to_its_rgb_factors(family: str) -> None:
    factors = LATENT_RGB_FACTORS[family]
    latent = torch.zeros(4, 2, 4)
    for channel in range(4):
        latent[channel, channel // 2, (channel % 2) * 2] = 1.0  # one hot pixel per channel
    image = latent_to_image(latent, family)
    assert image is not None and image.mode == "RGB" and image.size == (4, 2)
    for channel in range(4):
        assert image.getpixel(((channel % 2) * 2, channel // 2)) == expected_pixel(factors[channel])
    assert image.getpixel((1, 0)) == (128, 128, 128)  # a zero latent is mid grey


def test_families_differ_and_sd2_uses_sd1_factors() -> None:
    latent = torch.randn(4, 8, 8, generator=torch.Generator().manual_seed(0))
    sd1, sd2, sdxl = (latent_to_image(latent, f).tobytes() for f in ("sd1", "sd2", "sdxl"))
    assert sd1 == sd2 and sd1 != sdxl


def test_unknown_layouts_give_no_preview() -> None:
    assert latent_to_image(torch.zeros(16, 8, 8), "sd1") is None  # e.g. a 16-channel latent space
    assert latent_to_image(torch.zeros(4, 8, 8), "flux") is None


@pytest.mark.parametrize(
    ("every", "total", "due"),
    [(1, 4, [1, 2, 3, 4]), (2, 5, [2, 4]), (10, 4, []), (-1, 4, [4]), (0, 4, [])],
)
def test_display_period_follows_a1111(every: int, total: int, due: list[int]) -> None:
    assert [step for step in range(1, total + 1) if preview_due(step, total, every)] == due


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[int, int, object]] = []
        self.interrupted = True

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        self.reports.append((step, total, preview))


def test_reporter_makes_previews_only_on_due_steps() -> None:
    recorder = Recorder()
    reporter = PreviewReporter(recorder, every=2)
    made = []

    class Counting(LatentPreview):
        def image(self) -> Image.Image | None:
            made.append(1)
            return super().image()

    for step in range(1, 5):
        reporter.report(step, 4, Counting(torch.zeros(1, 4, 2, 2), "sd1"))
    assert [step for step, _, preview in recorder.reports if isinstance(preview, Image.Image)] == [2, 4]
    assert [preview for step, _, preview in recorder.reports if step in (1, 3)] == [None, None]
    assert len(made) == 2  # the lazy preview is only computed when shown
    assert reporter.interrupted is True  # everything else is the job's


class PreviewJob(Job):
    def __init__(self) -> None:
        super().__init__(params=None, kind="txt2img", clock=time.monotonic)
        self.previews: list[tuple[int, object]] = []

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        super().report(step, total, preview)
        self.previews.append((step, preview))


def test_a_run_shows_the_first_images_latents(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, make_manager: Callable[..., ModelManager]
) -> None:
    manager = make_manager(tmp_path, tiny_sd1)
    job = PreviewJob()
    params = Txt2Img(
        prompt="a cube", steps=4, sampler_name="Euler", seed=3, width=64, height=96, batch_size=2
    )
    generate.run(params, manager, PreviewReporter(job, every=2))
    shown = [(step, preview) for step, preview in job.previews if preview is not None]
    assert [step for step, _ in shown] == [2, 4]
    factor = manager.get().pipe.vae_scale_factor  # the preview has the latent's size
    assert all(isinstance(p, Image.Image) and p.size == (64 // factor, 96 // factor) for _, p in shown)
    assert shown[0][1].tobytes() != shown[1][1].tobytes()  # the latents move between steps
    assert job.progress().current_preview is shown[-1][1]
