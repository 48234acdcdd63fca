"""Where a run's noise comes from: A1111's seeds and variation seeds, its noise sources, eta and ENSD.

Each batch has one ImageRNG (engine.rng). Its first draw is the initial noise: txt2img hands it to the
pipeline as `latents`; img2img and inpaint pipelines draw it in `prepare_latents` through their module's
`randn_tensor`, which returns it while the batch runs. Ancestral samplers (Euler a, DPM2 a, LCM), DDIM
with eta and the SDE-multistep samplers draw their per-step noise through their scheduler module's
`randn_tensor`, which draws from the same RNG while the batch runs (A1111's TorchHijack does the same for
k-diffusion). DPM++ SDE keeps diffusers' Brownian tree, seeded per image (engine.sampling.schedulers).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams
from webui.engine.rng import ImageRNG
from webui.engine.sampling import ancestral_eta

# A1111's samplers whose k-diffusion function takes `eta` (its "Eta" infotext, default 1), and those of
# them whose options say "uses_ensd" (ENSD is written for them only, while their eta is not 0).
ANCESTRAL_ETA_SAMPLERS = frozenset(
    {"Euler a", "DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE"}
)
ENSD_SAMPLERS = frozenset({"Euler a", "DPM2 a", "DPM++ 2S a", "DPM fast", "DPM adaptive"})
DDIM_SAMPLERS = frozenset({"DDIM"})  # "Eta DDIM", default 0


@dataclass(frozen=True)
class NoiseOptions:
    """A1111's options for noise (randn_source, eta_noise_seed_delta, eta_ddim, eta_ancestral)."""

    randn_source: str = "GPU"
    eta_noise_seed_delta: int = 0
    eta_ddim: float = 0.0
    eta_ancestral: float = 1.0


def run_seeds(params: GenerationParams, subseed: int) -> tuple[list[int], list[int]]:
    """Every image's seed and variation seed (params.seed and `subseed` resolved), as A1111 makes them:
    seed, seed+1, … unless a variation strength is set (then every image has the seed), and subseed,
    subseed+1, … always."""
    count = params.total_images
    varied = params.subseed_strength != 0
    seeds = [params.seed + (0 if varied else index) for index in range(count)]
    return seeds, [subseed + index for index in range(count)]


def batch_rng(
    params: GenerationParams,
    shape: Sequence[int],
    seeds: Sequence[int],
    subseeds: Sequence[int],
    options: NoiseOptions,
) -> ImageRNG:
    """The ImageRNG of one batch of images with one image's latent `shape` (C, H, W)."""
    return ImageRNG(
        shape,
        seeds,
        subseeds,
        params.subseed_strength,
        params.seed_resize_from_h,
        params.seed_resize_from_w,
        source=options.randn_source,
        eta_noise_seed_delta=options.eta_noise_seed_delta,
    )


@dataclass(frozen=True)
class Eta:
    """The eta a sampler runs with, and its infotext entry (None when A1111 writes none)."""

    value: float | None  # None: the sampler has no eta
    infotext: dict[str, float]


def sampler_eta(sampler_name: str, eta: float | None, options: NoiseOptions) -> Eta:
    """The request's `eta`, else the option for the sampler's kind (A1111: the request overrides it).

    The ancestral and SDE samplers take any eta (engine.sampling.ancestral_eta)."""
    if eta is not None and eta < 0:
        raise InvalidParameter(f"Eta must be 0 or more, not {eta:g}")
    if sampler_name in DDIM_SAMPLERS:
        value = options.eta_ddim if eta is None else eta
        return Eta(value, {"Eta DDIM": value} if value != 0 else {})
    if sampler_name in ANCESTRAL_ETA_SAMPLERS:
        value = options.eta_ancestral if eta is None else eta
        return Eta(value, {"Eta": value} if value != 1 else {})
    return Eta(None, {})


def infotext_entries(sampler_name: str, eta: Eta, options: NoiseOptions) -> dict[str, Any]:
    """What A1111 writes about the noise: Eta / Eta DDIM when not their default, ENSD for the samplers
    that use it (with a non-zero eta), RNG when the source is not GPU."""
    uses_ensd = sampler_name in ENSD_SAMPLERS and options.eta_noise_seed_delta != 0 and eta.value != 0
    return {
        **eta.infotext,
        "ENSD": options.eta_noise_seed_delta if uses_ensd else None,
        "RNG": options.randn_source if options.randn_source != "GPU" else None,
    }


def _initial_noise_drawer(initial: torch.Tensor) -> Any:
    def randn_tensor(
        shape: Sequence[int],
        generator: object = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        layout: torch.layout | None = None,
    ) -> torch.Tensor:
        if tuple(shape) != tuple(initial.shape):
            raise ValueError(
                f"noise of shape {tuple(shape)} asked for, the batch's is {tuple(initial.shape)}"
            )
        return initial.to(device=device or initial.device, dtype=dtype or initial.dtype)

    return randn_tensor


@contextmanager
def _replaced(module_name: str, function: Any) -> Iterator[None]:
    """The module's `randn_tensor` is `function` inside the block (modules without one are left alone)."""
    module = sys.modules.get(module_name)
    if module is None or not hasattr(module, "randn_tensor"):
        yield
        return
    original = module.randn_tensor
    module.randn_tensor = function
    try:
        yield
    finally:
        module.randn_tensor = original


@contextmanager
def drawn_from(rng: ImageRNG, initial: torch.Tensor, pipe: Any, eta: float | None = None) -> Iterator[None]:
    """While the block runs, the pipeline's own noise is `initial` (rng's first draw), its scheduler's
    per-step noise is rng's next draws, and the ancestral and SDE samplers step with `eta`."""
    with ExitStack() as stack:
        stack.enter_context(ancestral_eta.stepping_with(pipe.scheduler, eta))
        stack.enter_context(_replaced(type(pipe).__module__, _initial_noise_drawer(initial)))
        stack.enter_context(_replaced(type(pipe.scheduler).__module__, rng.randn_tensor))
        yield
