"""Every A1111 sampler × schedule type pair runs; sigmas diffusers has no config for are A1111's."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core import infotext, samplers
from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate
from webui.engine.sampling.schedulers import make_scheduler
from webui.engine.sampling.sigmas import AYS_SD15, AYS_SDXL, ModelSigmas, a1111_sigmas
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SD15_CONFIG = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "steps_offset": 1,
}
PAIRS = [(s.name, label) for s in samplers.SAMPLERS for label in s.schedule_types]


def karras_eq5(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> list[float]:
    """Karras et al. 2022, eq. 5: (max^(1/rho) + i/(N-1) (min^(1/rho) - max^(1/rho)))^rho, then 0."""
    a, b = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return [(a + i / (n - 1) * (b - a)) ** rho for i in range(n)] + [0.0]


def sd15_sigma_range() -> tuple[float, float]:
    """sigma_min and sigma_max of SD 1.5's scaled-linear betas, from the betas by hand."""
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    alpha_bar = np.cumprod(1 - betas)
    sigmas = np.sqrt((1 - alpha_bar) / alpha_bar)
    return float(sigmas[0]), float(sigmas[-1])


def test_every_sampler_lists_every_a1111_schedule_type() -> None:
    labels = [s.label for s in samplers.SCHEDULE_TYPES]
    assert labels[:3] == ["Automatic", "Uniform", "Karras"] and "KL Optimal" in labels
    for sampler in samplers.SAMPLERS:
        assert sampler.schedule_types == tuple(labels)


@pytest.mark.parametrize("steps", [5, 20, 30])
def test_karras_with_euler_a_is_the_papers_formula(steps: int) -> None:
    """Euler a has no Karras config in diffusers: its sigmas are computed, and equal eq. 5."""
    choice = samplers.resolve("Euler a", "Karras")
    assert choice.sigmas == "karras"
    scheduler = make_scheduler(choice, SD15_CONFIG)
    scheduler.set_timesteps(steps)
    expected = karras_eq5(steps, *sd15_sigma_range())
    np.testing.assert_allclose(scheduler.sigmas.numpy(), expected, rtol=1e-5, atol=1e-6)
    # the timestep each sigma is fed to the UNet with is that sigma's on the model's schedule
    model = ModelSigmas(scheduler.alphas_cumprod)
    np.testing.assert_allclose(model.t_to_sigma(scheduler.timesteps.numpy()), expected[:-1], rtol=1e-4)


@pytest.mark.parametrize("steps", [6, 25])
def test_computed_sigmas_reach_second_order_and_multistep_schedulers(steps: int) -> None:
    """KL Optimal has no diffusers config: Heun (second order, interleaved) and DPM++ 2M get its
    sigmas, ending at 0 instead of A1111's sigma_min."""
    sigma_min, sigma_max = sd15_sigma_range()
    fraction = np.arange(steps) / steps
    kl = np.tan(fraction * math.atan(sigma_min) + (1 - fraction) * math.atan(sigma_max))
    heun = make_scheduler(samplers.resolve("Heun", "KL Optimal"), SD15_CONFIG)
    heun.set_timesteps(steps)
    np.testing.assert_allclose(heun.sigmas.numpy()[::2], kl, rtol=1e-5)  # each sigma twice but the first
    dpm = make_scheduler(samplers.resolve("DPM++ 2M", "KL Optimal"), SD15_CONFIG)
    dpm.set_timesteps(steps)
    np.testing.assert_allclose(dpm.sigmas.numpy(), [*kl, 0.0], rtol=1e-5, atol=1e-6)


def test_align_your_steps_tables_and_interpolation() -> None:
    model = ModelSigmas(make_scheduler(samplers.resolve("Euler"), SD15_CONFIG).alphas_cumprod)
    np.testing.assert_allclose(a1111_sigmas("align_your_steps", 11, model), [*AYS_SD15, 0.0])
    np.testing.assert_allclose(a1111_sigmas("align_your_steps", 11, model, sdxl=True), [*AYS_SDXL, 0.0])
    twenty = a1111_sigmas("align_your_steps", 20, model)
    assert len(twenty) == 21 and twenty[0] == pytest.approx(14.615) and twenty[-2] == pytest.approx(0.029)
    assert bool(np.all(np.diff(np.log(twenty[:-1])) < 0))


def test_discarding_the_penultimate_sigma_as_a1111() -> None:
    model = ModelSigmas(make_scheduler(samplers.resolve("Euler"), SD15_CONFIG).alphas_cumprod)
    plain = a1111_sigmas("polyexponential", 11, model)
    discarded = a1111_sigmas("polyexponential", 10, model, discard_penultimate=True)
    np.testing.assert_allclose(discarded, [*plain[:-2], 0.0])
    assert samplers.resolve("DPM2", "Polyexponential").discard_penultimate


def test_timesteps_samplers_ignore_a_schedule_type_they_cannot_express_as_a1111() -> None:
    karras = samplers.resolve("DDIM", "Karras")
    assert (karras.scheduler, karras.sigmas) == ("Karras", None)  # the infotext still says Karras
    assert karras.config_overrides == samplers.resolve("DDIM").config_overrides


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("sigmas"), tiny_sd1_fast)


@pytest.mark.filterwarnings("ignore:Should have ta>=t0")  # torchsde, on float rounding of sigma_min
@pytest.mark.parametrize(("sampler", "schedule"), PAIRS)
def test_every_pair_runs_a_step_on_the_tiny_model(manager: ModelManager, sampler: str, schedule: str) -> None:
    params = Txt2Img(
        prompt="a red circle", steps=1, seed=3, width=64, height=64, sampler_name=sampler, scheduler=schedule
    )
    result = generate.run(params, manager, Job(params=None, kind="txt2img", clock=time.monotonic))
    pixels = np.asarray(result.images[0], dtype=np.float32)
    assert pixels.shape == (64, 64, 3) and pixels.std() > 0
    fields = infotext.parse(result.infotexts[0])
    assert samplers.split_sampler_name(fields["Sampler"], fields.get("Schedule type", "")) == (
        samplers.split_sampler_name(sampler, schedule)
    )
    assert torch.isfinite(torch.from_numpy(pixels)).all()
