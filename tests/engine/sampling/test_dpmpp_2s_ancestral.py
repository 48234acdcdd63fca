"""DPM++ 2S a (engine.sampling.dpmpp_2s_ancestral) against k-diffusion's published algorithm
(sample_dpmpp_2s_ancestral, written out below), on the same sigmas and noise, with a fixed toy model."""

from __future__ import annotations

import math

import torch

from webui.core import samplers
from webui.engine.sampling.dpmpp_2s_ancestral import DPMSolver2SAncestralScheduler
from webui.engine.sampling.schedulers import make_scheduler

SD15 = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
}


def eps_model(scaled: torch.Tensor) -> torch.Tensor:
    """A UNet stand-in: predicted noise from the scaled input alone."""
    return 0.6 * scaled + 0.2 * torch.sin(3 * scaled)


def denoised(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return x - sigma * eps_model(x / math.sqrt(sigma**2 + 1))


def k_diffusion_2s_ancestral(
    x: torch.Tensor, sigmas: list[float], generator: torch.Generator
) -> torch.Tensor:
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = denoised(x, s)
        up = min(s_next, math.sqrt(s_next**2 * (s**2 - s_next**2) / s**2))
        down = math.sqrt(s_next**2 - up**2)
        if down == 0:
            x = d  # Euler to 0
        else:
            t, t_next = -math.log(s), -math.log(down)
            h = t_next - t
            s_mid = math.exp(-(t + h / 2))
            x_2 = (s_mid / s) * x - math.expm1(-h / 2) * d
            x = (down / s) * x - math.expm1(-h) * denoised(x_2, s_mid)
        if s_next > 0:
            x = x + torch.randn(x.shape, generator=generator, dtype=x.dtype) * up
    return x


def test_it_is_k_diffusions_dpmpp_2s_ancestral() -> None:
    scheduler = make_scheduler(samplers.resolve("DPM++ 2S a", "Automatic"), SD15)
    assert isinstance(scheduler, DPMSolver2SAncestralScheduler)
    scheduler.set_timesteps(6)
    start = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(1)) * scheduler.init_noise_sigma
    x, generator = start.clone(), torch.Generator().manual_seed(2)
    for timestep in scheduler.timesteps:
        scaled = scheduler.scale_model_input(x, timestep)
        x = scheduler.step(eps_model(scaled), timestep, x, generator=generator).prev_sample
    sigmas = [float(s) for s in scheduler.sigmas[0::2]]  # diffusers keeps each sigma twice
    expected = k_diffusion_2s_ancestral(start.clone(), sigmas, torch.Generator().manual_seed(2))
    torch.testing.assert_close(x, expected, rtol=1e-4, atol=1e-4)
    # and not DPM2 a's result on the same sigmas and noise
    dpm2 = make_scheduler(samplers.resolve("DPM2 a", "Karras"), SD15)
    dpm2.set_timesteps(6)
    y, generator = start.clone(), torch.Generator().manual_seed(2)
    for timestep in dpm2.timesteps:
        y = dpm2.step(
            eps_model(dpm2.scale_model_input(y, timestep)), timestep, y, generator=generator
        ).prev_sample
    assert (y - x).abs().max() > 1e-3
