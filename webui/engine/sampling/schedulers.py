"""Build the diffusers scheduler for a resolved A1111 sampler choice (see webui.core.samplers)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from webui.core.errors import InvalidParameter
from webui.core.samplers import OWNED_CONFIG_KEYS, SamplerChoice
from webui.engine.sampling import sigmas

if TYPE_CHECKING:  # diffusers is imported with the model, not with the page
    from diffusers import SchedulerMixin


def scheduler_class(class_name: str) -> type[SchedulerMixin]:
    import diffusers
    from diffusers import SchedulerMixin

    from webui.engine.sampling.dpmpp_2s_ancestral import DPMSolver2SAncestralScheduler

    # Samplers diffusers lacks, built on its schedulers here (core.samplers names them like diffusers' own).
    own: dict[str, type[SchedulerMixin]] = {cls.__name__: cls for cls in (DPMSolver2SAncestralScheduler,)}
    cls = own.get(class_name) or getattr(diffusers, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        raise InvalidParameter(f"diffusers {diffusers.__version__} has no scheduler class {class_name!r}")
    return cls


def accepted_config_keys(cls: type[SchedulerMixin]) -> frozenset[str]:
    """The config keys a scheduler class takes (its __init__ parameters)."""
    return frozenset(name for name in inspect.signature(cls.__init__).parameters if name != "self")


# What diffusers' own zero-terminal-SNR schedulers put in place of a terminal alpha_bar of exactly 0
# (whose sigma would be infinite).
TERMINAL_ALPHA_BAR = 2.0**-24


def zero_terminal_snr_betas(config: Mapping[str, Any]) -> list[float]:
    """The betas of `config`'s schedule rescaled to zero terminal SNR (Lin et al. 2023), with the last
    alpha_bar at TERMINAL_ALPHA_BAR instead of 0. As `trained_betas` they give every sampler the same
    schedule, including those without a `rescale_betas_zero_snr` option (Heun, LMS, DPM2, ...)."""
    from diffusers import DDPMScheduler
    from diffusers.schedulers.scheduling_ddim import rescale_zero_terminal_snr

    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")
    betas = rescale_zero_terminal_snr(DDPMScheduler(**{k: config[k] for k in keys if k in config}).betas)
    alphas_cumprod = torch.cumprod(1.0 - betas.double(), dim=0)
    betas[-1] = 1.0 - TERMINAL_ALPHA_BAR / alphas_cumprod[-2].item()
    return betas.tolist()


def make_scheduler(
    choice: SamplerChoice,
    base_config: Mapping[str, Any],
    seed: int | Sequence[int] | None = None,
    *,
    sdxl: bool = False,
) -> SchedulerMixin:
    """A new scheduler of `choice.class_name` for the model whose scheduler config is `base_config`.

    The model's facts (betas, prediction_type, rescale_betas_zero_snr, clip_sample, …) come from
    `base_config`; every key the choice decides is dropped from it first, so passing the config of a
    scheduler made by an earlier choice is safe. `seed` seeds the Brownian noise of schedulers that
    own one (DPM++ SDE); the others take their noise from the pipeline's generator. A schedule type
    the class has no config for samples with A1111's sigmas (engine.sampling.sigmas); `sdxl` picks
    the SDXL table of Align Your Steps.
    """
    import diffusers

    cls = scheduler_class(choice.class_name)
    accepted = accepted_config_keys(cls)
    unsupported = sorted(set(choice.config_overrides) - accepted)
    if unsupported:
        raise InvalidParameter(
            f"{choice.sampler_name} / {choice.scheduler}: diffusers {diffusers.__version__} "
            f"{choice.class_name} does not accept {', '.join(unsupported)}"
        )
    # noise_sampler_seed belongs to one run (the seed of the images), never to the next one.
    config = {
        key: value
        for key, value in base_config.items()
        if key not in OWNED_CONFIG_KEYS | {"noise_sampler_seed"}
    }
    if config.get("rescale_betas_zero_snr") and "rescale_betas_zero_snr" not in accepted:
        # the same rescaled schedule, spelt as betas that every scheduler takes
        if "trained_betas" not in accepted:
            raise InvalidParameter(
                f"Sampler {choice.sampler_name!r} cannot run this zero-terminal-SNR model: diffusers' "
                f"{choice.class_name} takes neither rescale_betas_zero_snr nor trained_betas"
            )
        del config["rescale_betas_zero_snr"]
        config["trained_betas"] = zero_terminal_snr_betas(config)
    overrides = dict(choice.config_overrides)
    if seed is not None and "noise_sampler_seed" in accepted:
        overrides["noise_sampler_seed"] = seed
    if choice.sigmas and sigmas.needs_karras_path(cls):
        overrides["use_karras_sigmas"] = True  # the code path our sigmas take (sigmas.install)
    scheduler = cls.from_config(config, **overrides)
    if choice.sigmas:
        sigmas.install(scheduler, choice.sigmas, sdxl=sdxl, discard_penultimate=choice.discard_penultimate)
    return scheduler
