"""A1111's schedule types as sigmas, and handing them to diffusers schedulers that have no config for them.

The schedules follow A1111 v1.10's published behaviour (k-diffusion's discrete model schedule: the model's
1000 sigmas, time ↔ sigma interpolated linearly in log sigma; Karras et al. 2022 eq. 5; "Align Your Steps"
tables from NVIDIA's how-to; "Beta Sampling is All You Need", Lee et al. 2024). Each returns the
sampling sigmas from high to low, ending with the final one (0, or sigma_min for KL Optimal).

Schedulers get them without forking diffusers:
- those with `use_karras_sigmas` (Euler, LMS, Heun, DPM2, DPM++ …, UniPC) run their own Karras code path
  with our sigmas in place of Karras' (their `_convert_to_karras` replaced on the instance), so the
  second-order interleaving, timesteps and solver state are diffusers' own. They end at 0 as always.
- Euler a gets its sigmas and timesteps set right after its own `set_timesteps`.
- LCM takes timesteps: the sigmas' nearest training timesteps.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # diffusers is imported with the model, not with the page
    from diffusers import SchedulerMixin

# NVIDIA's Align Your Steps sigmas for 10 steps (11 values, the 0 appended after).
AYS_SD15 = (14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029)
AYS_SDXL = (14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029)
BETA_ALPHA = BETA_BETA = 0.6  # A1111's default beta_dist_alpha / beta_dist_beta options
KARRAS_RHO = 7.0
POLYEXPONENTIAL_RHO = 1.0


class ModelSigmas:
    """The model's discrete noise levels (one per training timestep, ascending) and time ↔ sigma."""

    def __init__(self, alphas_cumprod: torch.Tensor) -> None:
        acp = alphas_cumprod.double().numpy()
        self.sigmas = np.sqrt((1.0 - acp) / acp)
        self.log_sigmas = np.log(self.sigmas)
        self.steps = np.arange(len(self.sigmas), dtype=np.float64)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def t_to_sigma(self, t: np.ndarray) -> np.ndarray:
        return np.exp(np.interp(t, self.steps, self.log_sigmas))

    def sigma_to_t(self, sigma: np.ndarray) -> np.ndarray:
        return np.interp(np.log(sigma), self.log_sigmas, self.steps)


def _zero(sigmas: np.ndarray) -> np.ndarray:
    return np.append(sigmas, 0.0)


def _uniform(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    # Uniform and Normal: n times evenly from the last training step to the first
    return _zero(model.t_to_sigma(np.linspace(model.steps[-1], 0.0, n)))


def _sgm_uniform(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    return _zero(model.t_to_sigma(np.linspace(model.steps[-1], 0.0, n + 1)[:-1]))


def _karras(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, n)
    low, high = model.sigma_min ** (1 / KARRAS_RHO), model.sigma_max ** (1 / KARRAS_RHO)
    return _zero((high + ramp * (low - high)) ** KARRAS_RHO)


def _exponential(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    return _zero(np.exp(np.linspace(math.log(model.sigma_max), math.log(model.sigma_min), n)))


def _polyexponential(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    ramp = np.linspace(1.0, 0.0, n) ** POLYEXPONENTIAL_RHO
    low, high = math.log(model.sigma_min), math.log(model.sigma_max)
    return _zero(np.exp(ramp * (high - low) + low))


def _kl_optimal(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    # n + 1 values from sigma_max down to sigma_min itself (no 0), as A1111
    fraction = np.arange(n + 1) / n
    return np.tan(fraction * math.atan(model.sigma_min) + (1.0 - fraction) * math.atan(model.sigma_max))


def _align_your_steps(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    table = np.array(AYS_SDXL if sdxl else AYS_SD15)
    if n == len(table):
        return _zero(table)
    # log-linear interpolation of the 10-step table to n values
    log_table = np.log(table[::-1])
    values = np.exp(np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(table)), log_table))[::-1]
    return _zero(values)


def _simple(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    stride = len(model.sigmas) / n
    return _zero(np.array([model.sigmas[-(1 + int(x * stride))] for x in range(n)]))


def _ddim(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    # every stride-th model sigma from index 1: may give a few more than n steps, as A1111
    stride = max(len(model.sigmas) // n, 1)
    return _zero(model.sigmas[1::stride][::-1])


def _beta(n: int, model: ModelSigmas, sdxl: bool) -> np.ndarray:
    from scipy import stats

    fractions = stats.beta.ppf(1.0 - np.linspace(0.0, 1.0, n), BETA_ALPHA, BETA_BETA)
    return _zero(model.sigma_min + fractions * (model.sigma_max - model.sigma_min))


SCHEDULES: dict[str, Callable[[int, ModelSigmas, bool], np.ndarray]] = {
    "uniform": _uniform,
    "karras": _karras,
    "exponential": _exponential,
    "polyexponential": _polyexponential,
    "sgm_uniform": _sgm_uniform,
    "kl_optimal": _kl_optimal,
    "align_your_steps": _align_your_steps,
    "simple": _simple,
    "normal": _uniform,  # A1111's Normal spans sigma_max..sigma_min in time: the same as Uniform
    "ddim": _ddim,
    "beta": _beta,
}


def a1111_sigmas(
    schedule: str, steps: int, model: ModelSigmas, *, sdxl: bool = False, discard_penultimate: bool = False
) -> np.ndarray:
    """The sigmas A1111 samples `steps` steps with for schedule type `schedule` (its id, e.g. "karras"),
    from high to low with the final sigma last. `discard_penultimate`: one more computed, the
    next-to-last dropped (A1111's DPM2, DPM2 a, DPM++ 3M SDE)."""
    sigmas = SCHEDULES[schedule](steps + 1 if discard_penultimate else steps, model, sdxl)
    if discard_penultimate:
        sigmas = np.concatenate([sigmas[:-2], sigmas[-1:]])
    return sigmas


def install(
    scheduler: SchedulerMixin, schedule: str, *, sdxl: bool = False, discard_penultimate: bool = False
) -> None:
    """Make `scheduler` sample with A1111's sigmas for `schedule` whatever steps it is set to.

    The scheduler must have been built with `use_karras_sigmas=True` when its class takes it
    (see `needs_karras_path`)."""
    model = ModelSigmas(scheduler.alphas_cumprod)

    def sigmas_for(steps: int) -> np.ndarray:
        return a1111_sigmas(schedule, steps, model, sdxl=sdxl, discard_penultimate=discard_penultimate)

    if needs_karras_path(scheduler):

        def convert(self: Any, in_sigmas: Any, num_inference_steps: int | None = None) -> np.ndarray:
            # the scheduler appends the final 0 itself
            return sigmas_for(num_inference_steps or self.num_inference_steps)[:-1]

        scheduler._convert_to_karras = types.MethodType(convert, scheduler)  # type: ignore[attr-defined]
        if hasattr(scheduler, "get_order_list"):
            _recount_orders(scheduler)
        return
    original = scheduler.set_timesteps

    if type(scheduler).__name__ == "LCMScheduler":

        def set_lcm_timesteps(num_inference_steps: int, device: Any = None, **kwargs: Any) -> None:
            times = np.round(model.sigma_to_t(sigmas_for(num_inference_steps)[:-1])).astype(np.int64)
            original(device=device, timesteps=list(dict.fromkeys(times.tolist())), **kwargs)

        scheduler.set_timesteps = set_lcm_timesteps  # type: ignore[method-assign]
        return

    def set_sigma_timesteps(num_inference_steps: int, device: Any = None, **kwargs: Any) -> None:
        original(num_inference_steps, device=device, **kwargs)
        sigmas = sigmas_for(num_inference_steps)
        times = model.sigma_to_t(sigmas[:-1])
        scheduler.sigmas = torch.from_numpy(sigmas.astype(np.float32))
        scheduler.timesteps = torch.from_numpy(times.astype(np.float32)).to(device)
        scheduler.num_inference_steps = len(times)

    scheduler.set_timesteps = set_sigma_timesteps  # type: ignore[method-assign]


def _recount_orders(scheduler: Any) -> None:
    """Single-step DPM-Solver plans its solver orders by the steps asked for; A1111's DDIM schedule may
    give a step more, so plan by the timesteps it got."""
    original = scheduler.set_timesteps

    def set_timesteps(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        if len(scheduler.order_list) != len(scheduler.timesteps):
            scheduler.order_list = scheduler.get_order_list(len(scheduler.timesteps))

    scheduler.set_timesteps = set_timesteps


def needs_karras_path(scheduler: SchedulerMixin | type[SchedulerMixin]) -> bool:
    """Whether sigmas reach this scheduler (or class) through its own Karras code path."""
    cls = scheduler if isinstance(scheduler, type) else type(scheduler)
    return "use_karras_sigmas" in inspect.signature(cls.__init__).parameters
