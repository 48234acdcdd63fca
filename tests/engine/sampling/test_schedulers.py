"""Every A1111 sampler builds a working diffusers scheduler, and schedule types change what they should."""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from webui.core import samplers
from webui.core.errors import InvalidParameter
from webui.engine.sampling.schedulers import (
    TERMINAL_ALPHA_BAR,
    accepted_config_keys,
    make_scheduler,
    scheduler_class,
    zero_terminal_snr_betas,
)

# The scheduler config shipped with SD 1.5 (PNDM, scaled_linear betas 0.00085..0.012, 1000 steps).
SD15_CONFIG = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

# Schedule types that give the same schedule by design: the same diffusers config (see
# webui/core/samplers.py), or A1111 formulas that coincide (Normal = Uniform; Polyexponential with
# A1111's rho 1 = Exponential).
SAME_CONFIG = {"Normal": "Uniform", "Simple": "SGM Uniform"}
SAME_SIGMAS = {"Normal": "Uniform", "Polyexponential": "Exponential"}


def _same_by_design(sampler: samplers.Sampler, a: str, b: str) -> bool:
    choices = samplers.resolve(sampler.name, a), samplers.resolve(sampler.name, b)
    if sampler.ignores_schedule and choices[0].config_overrides == choices[1].config_overrides:
        return True  # A1111's timesteps samplers ignore a schedule type they cannot express
    pairs = SAME_SIGMAS if all(c.sigmas for c in choices) else SAME_CONFIG
    return pairs.get(a) == b or pairs.get(b) == a


def _comparable(sampler: samplers.Sampler, a: str, b: str) -> bool:
    """Exponential by diffusers' config and Polyexponential computed are the same sigmas, but some
    classes round the timesteps on one code path only, and A1111's DPM2 drops a sigma of the computed
    ones only: compare those two only when both are computed."""
    if {a, b} != {"Exponential", "Polyexponential"}:
        return True
    return samplers.resolve(sampler.name, "Exponential").sigmas is not None


def _schedule(name: str, schedule_type: str) -> tuple[list[float], list[float]]:
    scheduler = make_scheduler(samplers.resolve(name, schedule_type), SD15_CONFIG)
    scheduler.set_timesteps(10)
    sigmas = getattr(scheduler, "sigmas", None)
    return scheduler.timesteps.tolist(), [] if sigmas is None else sigmas.tolist()


def _run(scheduler, steps: int = 10) -> torch.Tensor:
    """A tiny denoising loop with a fake model that predicts a fixed fraction of the sample as noise."""
    generator = torch.Generator().manual_seed(0)
    scheduler.set_timesteps(steps)
    sample = torch.randn(1, 4, 8, 8, generator=generator) * scheduler.init_noise_sigma
    extra = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(sample, t)
        sample = scheduler.step(0.5 * model_input, t, sample, **extra).prev_sample
    return sample


@pytest.mark.filterwarnings("ignore:Should have ta>=t0")  # torchsde, on float rounding of sigma_min
@pytest.mark.parametrize("sampler", samplers.SAMPLERS, ids=lambda s: s.name)
def test_every_sampler_builds_and_steps(sampler: samplers.Sampler) -> None:
    choice = samplers.resolve(sampler.name, "Automatic")
    scheduler = make_scheduler(choice, SD15_CONFIG, seed=1)
    assert type(scheduler).__name__ == sampler.class_name
    for key, value in choice.config_overrides.items():
        assert scheduler.config[key] == value, key
    first = _run(scheduler)
    assert first.shape == (1, 4, 8, 8)
    assert torch.isfinite(first).all()
    start = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * scheduler.init_noise_sigma
    assert not torch.allclose(first, start)


def test_automatic_uses_the_samplers_a1111_default() -> None:
    assert samplers.resolve("DPM++ 2M", "Automatic").scheduler == "Karras"
    assert _schedule("DPM++ 2M", "Automatic") == _schedule("DPM++ 2M", "Karras")
    assert _schedule("DPM++ 3M SDE", "Automatic") == _schedule("DPM++ 3M SDE", "Exponential")
    assert _schedule("Euler", "Automatic") == _schedule("Euler", "Uniform")
    assert _schedule("DDIM", "Automatic") == _schedule("DDIM", "DDIM")


@pytest.mark.parametrize("sampler", samplers.SAMPLERS, ids=lambda s: s.name)
def test_schedule_types_change_the_schedule(sampler: samplers.Sampler) -> None:
    explicit = [label for label in sampler.schedule_types if label != "Automatic"]
    results = {label: _schedule(sampler.name, label) for label in explicit}
    for a, b in itertools.combinations(explicit, 2):
        if not _comparable(sampler, a, b):
            continue
        equal = all(
            len(x) == len(y) and bool(np.allclose(x, y, rtol=1e-5)) for x, y in zip(results[a], results[b])
        )
        assert equal == _same_by_design(sampler, a, b), f"{sampler.name}: {a} vs {b}"


def test_karras_spans_the_models_full_sigma_range() -> None:
    _, uniform = _schedule("Euler", "Uniform")
    _, karras = _schedule("Euler", "Karras")
    assert karras[0] == pytest.approx(uniform[0])  # sigma_max ≈ 14.6 for SD 1.5
    assert karras[0] > 14


def test_core_capability_table_matches_diffusers() -> None:
    for class_name, keys in samplers.SCHEDULE_KEYS_BY_CLASS.items():
        assert keys <= accepted_config_keys(scheduler_class(class_name)), class_name
    for sampler in samplers.SAMPLERS:
        assert set(sampler.config) <= accepted_config_keys(scheduler_class(sampler.class_name)), sampler.name


def test_an_earlier_choice_does_not_leak_into_the_next() -> None:
    karras = make_scheduler(samplers.resolve("DPM++ 2M SDE Heun", "Karras"), SD15_CONFIG)
    euler = make_scheduler(samplers.resolve("Euler", "Automatic"), karras.config)
    fresh = make_scheduler(samplers.resolve("Euler", "Automatic"), SD15_CONFIG)
    assert euler.config["use_karras_sigmas"] is False
    euler.set_timesteps(10)
    fresh.set_timesteps(10)
    assert torch.equal(euler.sigmas, fresh.sigmas)
    dpm = make_scheduler(samplers.resolve("DPM++ 2M"), karras.config)
    assert (dpm.config["algorithm_type"], dpm.config["solver_type"]) == ("dpmsolver++", "midpoint")


def test_model_facts_are_kept() -> None:
    config = {**SD15_CONFIG, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True}
    scheduler = make_scheduler(samplers.resolve("Euler"), config)
    assert scheduler.config["prediction_type"] == "v_prediction"
    assert scheduler.config["rescale_betas_zero_snr"] is True


def test_a_sampler_without_the_zero_snr_option_gets_the_rescaled_betas() -> None:
    config = {**SD15_CONFIG, "prediction_type": "v_prediction", "rescale_betas_zero_snr": True}
    euler = make_scheduler(samplers.resolve("Euler"), config)
    for name in ("LMS", "Heun", "DPM2"):  # none of them has rescale_betas_zero_snr
        other = make_scheduler(samplers.resolve(name), config)
        assert "rescale_betas_zero_snr" not in other.config
        assert torch.allclose(other.alphas_cumprod, euler.alphas_cumprod, rtol=1e-5)
        assert other.alphas_cumprod[-1].item() == pytest.approx(TERMINAL_ALPHA_BAR, rel=1e-5)


def test_seed_reaches_the_brownian_noise_of_dpmpp_sde() -> None:
    scheduler = make_scheduler(samplers.resolve("DPM++ SDE"), SD15_CONFIG, seed=1234)
    assert scheduler.config["noise_sampler_seed"] == 1234


def test_an_override_the_class_does_not_take_is_refused() -> None:
    choice = samplers.SamplerChoice("DDIM", "Karras", "DDIMScheduler", {"use_karras_sigmas": True})
    with pytest.raises(InvalidParameter, match="use_karras_sigmas"):
        make_scheduler(choice, SD15_CONFIG)


def test_zero_terminal_snr_betas_are_diffusers_rescaled_schedule() -> None:
    betas = torch.tensor(zero_terminal_snr_betas(SD15_CONFIG), dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    reference = DDIMScheduler.from_config(SD15_CONFIG, rescale_betas_zero_snr=True).alphas_cumprod
    assert reference[-1].item() == 0.0  # diffusers' own: exactly zero, an infinite sigma for Karras & co.
    assert torch.allclose(alphas_cumprod[:-1], reference[:-1].double(), rtol=1e-4)
    assert alphas_cumprod[-1].item() == pytest.approx(TERMINAL_ALPHA_BAR, rel=1e-6)
    assert bool((alphas_cumprod[1:] < alphas_cumprod[:-1]).all())
