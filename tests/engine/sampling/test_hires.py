"""Hires fix (engine.sampling.hires) through engine.generate.run on the tiny SD1 checkpoint: the second pass's
size, its identity with a plain upscale at denoising 0, its infotext, progress over both passes and
interrupt during the second pass."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img
from webui.engine.checkpoints import memory
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate, hires, img2img
from webui.services.job import Job

BASE = Txt2Img(
    prompt="a red cube",
    negative_prompt="blurry",
    steps=3,
    cfg_scale=5.0,
    sampler_name="Euler",
    seed=77,
    width=64,
    height=64,
)
HIRES = BASE.replace(enable_hr=True, hr_scale=2.0, denoising_strength=0.5, hr_second_pass_steps=2)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RecordingJob(Job):
    """A real Job that keeps each report and the job's progress after it; it can interrupt itself at a
    given report."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        super().__init__(params=None, kind="txt2img", clock=time.monotonic)
        self.reports: list[tuple[int, int]] = []
        self.fractions: list[float] = []
        self.interrupt_at = interrupt_at

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        super().report(step, total, preview)
        self.reports.append((step, total))
        self.fractions.append(self.progress().progress)
        if self.interrupt_at is not None and len(self.reports) == self.interrupt_at:
            self._interrupt.set()


def first_pass_latents(manager: ModelManager, params: Txt2Img) -> torch.Tensor:
    """The first pass's latents, caught where the second pass receives them."""
    caught: list[torch.Tensor] = []
    original = hires.second_pass

    def catch(run: Any, p: Any, latents: torch.Tensor, run_batch: Any, *batch: Any) -> Any:
        caught.append(latents.clone())
        return original(run, p, latents, run_batch, *batch)

    hires.second_pass = catch  # type: ignore[assignment]
    try:
        generate.run(params, manager, RecordingJob())
    finally:
        hires.second_pass = original  # type: ignore[assignment]
    return caught[0]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_the_output_is_the_first_pass_times_the_scale_or_the_resize_size(manager: ModelManager) -> None:
    assert generate.run(HIRES, manager, RecordingJob()).images[0].size == (128, 128)
    scaled = HIRES.replace(hr_scale=1.5, width=64, height=96)
    assert generate.run(scaled, manager, RecordingJob()).images[0].size == (96, 144)
    # resize-to wins over the scale; one side 0 keeps the aspect ratio
    resized = HIRES.replace(hr_resize_x=128, hr_resize_y=0, height=96)
    assert generate.run(resized, manager, RecordingJob()).images[0].size == (128, 192)
    # both sides: cover, then crop the overflow in latent space
    both = HIRES.replace(hr_resize_x=128, hr_resize_y=96, hr_upscaler="Lanczos")
    assert generate.run(both, manager, RecordingJob()).images[0].size == (128, 96)


def test_denoising_0_with_a_pixel_upscaler_is_a_plain_upscale_of_the_first_pass(
    manager: ModelManager,
) -> None:
    first = generate.run(BASE, manager, RecordingJob()).images[0]
    for upscaler in ("Lanczos", "Nearest", "None"):
        params = HIRES.replace(hr_upscaler=upscaler, denoising_strength=0.0)
        result = generate.run(params, manager, RecordingJob()).images[0]
        resample = Image.Resampling.NEAREST if upscaler == "Nearest" else Image.Resampling.LANCZOS
        assert np.array_equal(pixels(result), pixels(first.resize((128, 128), resample=resample)))


def test_denoising_0_with_a_latent_mode_is_the_decode_of_the_upscaled_latents(manager: ModelManager) -> None:
    latents = first_pass_latents(manager, HIRES)
    loaded = manager.get()
    side = 128 // loaded.pipe.vae_scale_factor
    for mode, (torch_mode, antialias) in hires.LATENT_MODES.items():
        params = HIRES.replace(hr_upscaler=mode, denoising_strength=0.0)
        result = generate.run(params, manager, RecordingJob()).images[0]
        upscaled = torch.nn.functional.interpolate(
            latents, size=(side, side), mode=torch_mode, antialias=antialias
        )
        expected = memory.decode_latents(loaded.pipe, upscaled)[0]
        assert np.array_equal(pixels(result), pixels(expected)), mode


def test_the_second_pass_denoises_the_upscaled_first_pass(manager: ModelManager) -> None:
    first = generate.run(BASE, manager, RecordingJob()).images[0]
    upscaled = pixels(first.resize((128, 128), resample=Image.Resampling.LANCZOS))
    plain = generate.run(HIRES.replace(hr_upscaler="Lanczos", denoising_strength=0), manager, RecordingJob())
    denoised = generate.run(HIRES.replace(hr_upscaler="Lanczos"), manager, RecordingJob())
    assert np.array_equal(pixels(plain.images[0]), upscaled)
    assert not np.array_equal(pixels(denoised.images[0]), upscaled)
    # the same seed makes the same image again
    again = generate.run(HIRES.replace(hr_upscaler="Lanczos"), manager, RecordingJob())
    assert np.array_equal(pixels(again.images[0]), pixels(denoised.images[0]))


def test_the_infotext_has_a1111s_hires_keys_and_pastes_back(manager: ModelManager) -> None:
    params = HIRES.replace(hr_upscaler="Latent (bicubic)", hr_prompt="a blue cube", hr_sampler_name="DDIM")
    result = generate.run(params, manager, RecordingJob())
    text = result.infotexts[0]
    line = text.splitlines()[-1]
    for pair in (
        "Denoising strength: 0.5",
        "Hires upscale: 2",
        "Hires steps: 2",
        "Hires upscaler: Latent (bicubic)",
        "Hires sampler: DDIM",
        "Hires prompt: a blue cube",
    ):
        assert pair in line, pair
    assert "Hires negative prompt" not in line and "Hires resize" not in line
    pasted = infotext.to_params(infotext.parse(text))
    assert pasted.enable_hr and pasted.hr_scale == 2.0 and pasted.hr_upscaler == "Latent (bicubic)"
    assert (pasted.hr_prompt, pasted.hr_sampler_name, pasted.hr_second_pass_steps) == (
        "a blue cube",
        "DDIM",
        2,
    )
    # without hires fix no hires key, not even Denoising strength
    plain = generate.run(BASE, manager, RecordingJob()).infotexts[0]
    assert "Hires" not in plain and "Denoising strength" not in plain


def test_progress_counts_both_passes(manager: ModelManager) -> None:
    job = RecordingJob()
    generate.run(HIRES.replace(steps=3, hr_second_pass_steps=2), manager, job)
    assert job.reports == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert job.fractions == sorted(job.fractions) and job.fractions[-1] == 1.0
    # 0 hires steps: as many as the first pass
    job = RecordingJob()
    generate.run(HIRES.replace(steps=2, hr_second_pass_steps=0), manager, job)
    assert job.reports == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_interrupt_during_the_second_pass_stops_it(manager: ModelManager) -> None:
    job = RecordingJob(interrupt_at=4)  # the first step of the second pass
    result = generate.run(HIRES.replace(steps=3, hr_second_pass_steps=5), manager, job)
    assert result.interrupted
    assert job.reports == [(1, 8), (2, 8), (3, 8), (4, 8)]
    assert result.images[0].size == (128, 128)
    # interrupted in the first pass: no second pass, the first pass's size
    job = RecordingJob(interrupt_at=1)
    result = generate.run(HIRES, manager, job)
    assert job.reports == [(1, 5)] and result.images[0].size == (64, 64)


def test_an_unknown_upscaler_or_hires_checkpoint_is_refused(manager: ModelManager) -> None:
    with pytest.raises(InvalidParameter, match="unknown upscaler 'ESRGAN_4x'.*Latent.*Lanczos"):
        generate.run(HIRES.replace(hr_upscaler="ESRGAN_4x"), manager, RecordingJob())
    with pytest.raises(InvalidParameter, match="Hires checkpoint 'missing' not found"):
        generate.run(HIRES.replace(hr_checkpoint_name="missing"), manager, RecordingJob())


def test_the_same_hires_checkpoint_is_written_as_name_and_hash(manager: ModelManager) -> None:
    result = generate.run(HIRES.replace(hr_checkpoint_name="tiny-sd1"), manager, RecordingJob())
    short = manager.short_hash(manager.get())
    assert f"Hires checkpoint: tiny-sd1 [{short}]" in result.infotexts[0]


def test_schedule_runs_exactly_the_hires_steps() -> None:
    for steps in (1, 2, 7, 20, 150):
        for strength in (0.01, 0.1, 0.33, 0.5, 0.7, 0.999, 1.0):
            total, fraction = hires.schedule(steps, strength, 1000)
            assert total <= 1000 and min(int(total * fraction), total) == steps


def test_encode_images_of_the_upscaled_pixels_is_what_the_second_pass_starts_from(
    manager: ModelManager,
) -> None:
    # the pixel path encodes at the target latent size (no resize of the latents afterwards)
    pipe = manager.get().pipeline(img2img.PIPELINES[False, False])
    image = Image.new("RGB", (128, 128), (200, 30, 30))
    side = 128 // pipe.vae_scale_factor
    assert img2img.encode_images(pipe, [image], (side, side)).shape[-2:] == (side, side)
