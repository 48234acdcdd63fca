"""The ✨ Upscale path (engine.sampling.hires_upscale) on the tiny SD1 checkpoint: an image made before
stands for the first pass, only the second pass runs, and it runs exactly as in a full hires-fix run."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch

from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate, hires, hires_upscale
from webui.services.job import Job

BASE = Txt2Img(
    prompt="a red cube", steps=3, cfg_scale=5.0, sampler_name="Euler a", seed=77, width=64, height=64
)
HIRES = BASE.replace(enable_hr=True, hr_scale=2.0, denoising_strength=0.5, hr_second_pass_steps=2)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CountingJob(Job):
    def __init__(self) -> None:
        super().__init__(params=None, kind="txt2img", clock=time.monotonic)
        self.reports = 0

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        super().report(step, total, preview)
        self.reports += 1


def test_only_the_second_pass_runs_on_the_given_image(manager: ModelManager) -> None:
    made = generate.run(BASE, manager, CountingJob())
    job = CountingJob()
    upscaled = generate.run(HIRES.replace(firstpass_image=made.images[0]), manager, job)
    assert upscaled.images[0].size == (128, 128)
    assert job.reports == 2  # the hires steps only
    fields = infotext.parse(upscaled.infotexts[0])
    assert (fields["Hires upscale"], fields["Hires steps"], fields["Seed"]) == ("2", "2", "77")
    assert fields["Size"] == "64x64"
    other = generate.run(BASE.replace(seed=5), manager, CountingJob()).images[0]
    again = generate.run(HIRES.replace(firstpass_image=other), manager, CountingJob())
    assert again.images[0].tobytes() != upscaled.images[0].tobytes()


def test_from_the_same_latents_it_is_the_full_runs_second_pass(
    manager: ModelManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    caught: list[torch.Tensor] = []
    original = hires.second_pass

    def catch(run: Any, p: Any, latents: torch.Tensor, *rest: Any) -> Any:
        caught.append(latents.clone())
        return original(run, p, latents, *rest)

    monkeypatch.setattr(hires, "second_pass", catch)
    full = generate.run(HIRES, manager, CountingJob())
    monkeypatch.setattr(hires_upscale, "first_pass_latents", lambda *args: caught[0])
    upscaled = generate.run(
        HIRES.replace(firstpass_image=full.images[0].resize((64, 64))), manager, CountingJob()
    )
    assert upscaled.images[0].tobytes() == full.images[0].tobytes()
    assert upscaled.infotexts == full.infotexts


def test_an_image_of_another_size_is_refused(manager: ModelManager) -> None:
    made = generate.run(BASE.replace(width=96), manager, CountingJob())
    with pytest.raises(InvalidParameter, match="the image to upscale is 96x64, the first pass 64x64"):
        generate.run(HIRES.replace(firstpass_image=made.images[0]), manager, CountingJob())


def test_the_second_pass_takes_the_eta_of_its_own_sampler(manager: ModelManager) -> None:
    from webui.engine.sampling.noise import NoiseOptions

    # DDIM's eta (0) is no eta for the hires pass's Euler a, whose eta is the k-diffusion option
    params = HIRES.replace(sampler_name="DDIM", hr_sampler_name="Euler a")
    full = generate.run(params, manager, CountingJob(), noise_options=NoiseOptions())
    none = generate.run(params, manager, CountingJob(), noise_options=NoiseOptions(eta_ancestral=0.0))
    assert full.images[0].tobytes() != none.images[0].tobytes()
