"""Eta for the ancestral and SDE samplers: diffusers' schedulers always take k-diffusion's full ancestral
step (eta 1). k-diffusion splits a step from sigma_from to sigma_to into sigma_up = min(sigma_to, eta · s)
and sigma_down = sqrt(sigma_to² − sigma_up²), s being eta 1's sigma_up. Each scheduler gets eta without
forking diffusers, on its own instance while a run lasts:

- Euler a, DPM++ SDE: diffusers' step runs unchanged, then its result moves from eta 1's split to eta's:
  x + d · (down − down₁) + noise · (up − up₁), with d = (x − x₀) / sigma_from and the noise its step
  added (Euler a: the noise it drew; DPM++ SDE: the Brownian tree's, read back from the step).
- DPM2 a, DPM++ 2S a: their set_timesteps precomputes the splits and the midpoints they decide (and
  their timesteps); they are recomputed with eta right after it.
- DPM++ 2M SDE (Heun), 3M SDE: diffusers' sde-dpmsolver++ updates are k-diffusion's at eta 1; they are
  replaced by the same updates with eta (exp(−h) → exp(−eta·h), 2h → (1 + eta)·h in the data terms,
  noise · sqrt(1 − exp(−2·eta·h))), in diffusers' alpha/sigma form.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

ETA_SCHEDULERS = frozenset(
    {
        "EulerAncestralDiscreteScheduler",
        "KDPM2AncestralDiscreteScheduler",
        "DPMSolver2SAncestralScheduler",  # DPM++ 2S a, on DPM2 a's (engine.sampling.dpmpp_2s_ancestral)
        "DPMSolverSDEScheduler",
        "DPMSolverMultistepScheduler",  # its sde-dpmsolver++ algorithm only
    }
)


def _split(sigma_from: torch.Tensor, sigma_to: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    full = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
    up = torch.minimum(sigma_to, eta * full)
    return up, (sigma_to**2 - up**2) ** 0.5


def _output(output: Any, moved: torch.Tensor, return_dict: bool) -> Any:
    x0 = output.pred_original_sample
    return type(output)(prev_sample=moved, pred_original_sample=x0) if return_dict else (moved, x0)


def _euler_ancestral(scheduler: Any, eta: float) -> dict[str, Callable[..., Any]]:
    module = sys.modules[type(scheduler).__module__]
    original = scheduler.step

    def step(
        model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any, **kwargs: Any
    ) -> Any:
        return_dict = kwargs.pop("return_dict", True)
        if scheduler.step_index is None:
            scheduler._init_step_index(timestep)
        index = scheduler.step_index
        sigma_from, sigma_to = scheduler.sigmas[index], scheduler.sigmas[index + 1]
        drawn: list[torch.Tensor] = []
        draw = module.randn_tensor  # the batch's RNG while the run lasts (engine.sampling.noise)

        def recording(*draw_args: Any, **draw_kwargs: Any) -> torch.Tensor:
            noise: torch.Tensor = draw(*draw_args, **draw_kwargs)
            drawn.append(noise)
            return noise

        module.randn_tensor = recording
        try:
            output = original(model_output, timestep, sample, *args, return_dict=True, **kwargs)
        finally:
            module.randn_tensor = draw
        up_1, down_1 = _split(sigma_from, sigma_to, 1.0)
        up, down = _split(sigma_from, sigma_to, eta)
        derivative = (sample.to(torch.float32) - output.pred_original_sample) / sigma_from
        shift = derivative * (down - down_1) + drawn[0] * (up - up_1)
        return _output(output, output.prev_sample + shift.to(output.prev_sample), return_dict)

    return {"step": step}


def _dpm_sde(scheduler: Any, eta: float) -> dict[str, Callable[..., Any]]:
    original = scheduler.step

    def step(
        model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any, **kwargs: Any
    ) -> Any:
        return_dict = kwargs.pop("return_dict", True)
        if scheduler.step_index is None:
            scheduler._init_step_index(timestep)
        first, index = scheduler.state_in_first_order, scheduler.step_index
        start = sample if first else scheduler.sample  # both half-steps start from the step's sample
        sigma = scheduler.sigmas[index if first else index - 1]
        sigma_next = scheduler.sigmas[index + 1 if first else index]
        output = original(model_output, timestep, sample, *args, return_dict=True, **kwargs)
        if sigma_next == 0:  # a plain Euler step to 0: no split
            return output if return_dict else (output.prev_sample, output.pred_original_sample)
        sigma_to = (sigma * sigma_next) ** 0.5 if first else sigma_next  # the first half ends midway
        x0 = output.pred_original_sample
        derivative = (start.to(torch.float32) - x0) / sigma
        up_1, down_1 = _split(sigma, sigma_to, 1.0)
        up, down = _split(sigma, sigma_to, eta)
        added = output.prev_sample - x0 - derivative * down_1  # the Brownian noise · up_1
        moved = x0 + derivative * down + added * (up / up_1 if up_1 > 0 else 0.0)
        return _output(output, moved.to(output.prev_sample), return_dict)

    return {"step": step}


def _dpm2_ancestral(scheduler: Any, eta: float) -> dict[str, Callable[..., Any]]:
    original = scheduler.set_timesteps

    def set_timesteps(num_inference_steps: int, device: Any = None, **kwargs: Any) -> None:
        original(num_inference_steps, device=device, **kwargs)
        # diffusers keeps each sigma twice (one for each half-step): every other one is the schedule
        sigmas = scheduler.sigmas[0::2]
        nexts = torch.cat([sigmas[1:], sigmas.new_zeros(1)])
        up, down = _split(sigmas, nexts, eta)
        up, down = up.nan_to_num(0.0), down.nan_to_num(0.0)  # the final sigma 0
        down[-1] = 0.0
        middle = sigmas.log().lerp(down.log(), 0.5).exp()  # DPM-2's midpoint, in log sigma
        middle[-2:] = 0.0

        def interleaved(values: torch.Tensor) -> torch.Tensor:
            return torch.cat([values[:1], values[1:].repeat_interleave(2), values[-1:]])

        target = scheduler.sigmas_up.device
        scheduler.sigmas_up = interleaved(up).to(target)
        scheduler.sigmas_down = interleaved(down).to(target)
        scheduler.sigmas_interpol = interleaved(middle).to(target)
        timesteps = scheduler.timesteps[0::2]
        log_sigmas = scheduler.log_sigmas.cpu()
        middle_t = torch.tensor([float(scheduler._sigma_to_t(value, log_sigmas)) for value in middle])
        middle_t = middle_t.to(timesteps)
        pairs = torch.stack((middle_t[:-2, None], timesteps[1:, None]), dim=-1).flatten()
        scheduler.timesteps = torch.cat([timesteps[:1], pairs])

    return {"set_timesteps": set_timesteps}


def _sde_multistep(scheduler: Any, eta: float) -> dict[str, Callable[..., Any]]:
    if scheduler.config.algorithm_type != "sde-dpmsolver++":
        return {}

    def update(outputs: list[torch.Tensor], sample: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        order, index = len(outputs), scheduler.step_index
        alpha_t, sigma_t = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[index + 1])
        lambdas = []
        for back in range(order):
            alpha, sigma = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[index - back])
            lambdas.append(torch.log(alpha) - torch.log(sigma))
        _, sigma_s0 = scheduler._sigma_to_alpha_sigma_t(scheduler.sigmas[index])
        h = torch.log(alpha_t) - torch.log(sigma_t) - lambdas[0]
        eta_h = h * eta if eta else torch.zeros_like(h)  # 0 · inf (the last step to sigma 0) is not 0
        h_eta = h + eta_h
        data = alpha_t * (1.0 - torch.exp(-h_eta))
        x = (sigma_t / sigma_s0 * torch.exp(-eta_h)) * sample + data * outputs[-1]
        if order >= 2:
            r0 = (lambdas[0] - lambdas[1]) / h
            d1 = (outputs[-1] - outputs[-2]) / r0
            phi_2 = alpha_t * ((1.0 - torch.exp(-h_eta)) / -h_eta + 1.0)
            if order == 2 and scheduler.config.solver_type == "midpoint":
                x = x + 0.5 * data * d1
            elif order == 2:
                x = x + phi_2 * d1
            else:
                r1 = (lambdas[1] - lambdas[2]) / h
                d1_1 = (outputs[-2] - outputs[-3]) / r1
                d2 = (d1 - d1_1) / (r0 + r1)
                x = x + phi_2 * (d1 + r0 * d2)
                x = x + alpha_t * ((1.0 - torch.exp(-h_eta) - h_eta) / h_eta**2 - 0.5) * d2
        return x + sigma_t * torch.sqrt(1.0 - torch.exp(-2.0 * eta_h)) * noise

    def first(model_output: torch.Tensor, *args: Any, sample: torch.Tensor, noise: Any, **kw: Any) -> Any:
        return update([model_output], sample, noise)

    def second(outputs: list[torch.Tensor], *args: Any, sample: torch.Tensor, noise: Any, **kw: Any) -> Any:
        return update(list(outputs[-2:]), sample, noise)

    def third(outputs: list[torch.Tensor], *args: Any, sample: torch.Tensor, noise: Any, **kw: Any) -> Any:
        return update(list(outputs[-3:]), sample, noise)

    return {
        "dpm_solver_first_order_update": first,
        "multistep_dpm_solver_second_order_update": second,
        "multistep_dpm_solver_third_order_update": third,
    }


_PATCHES: dict[str, Callable[[Any, float], dict[str, Callable[..., Any]]]] = {
    "EulerAncestralDiscreteScheduler": _euler_ancestral,
    "KDPM2AncestralDiscreteScheduler": _dpm2_ancestral,
    "DPMSolver2SAncestralScheduler": _dpm2_ancestral,  # the same splits and midpoints
    "DPMSolverSDEScheduler": _dpm_sde,
    "DPMSolverMultistepScheduler": _sde_multistep,
}


@contextmanager
def stepping_with(scheduler: Any, eta: float | None) -> Iterator[None]:
    """Inside the block this scheduler instance steps with `eta` (None or 1: unchanged)."""
    patch = _PATCHES.get(type(scheduler).__name__)
    if patch is None or eta is None or eta == 1:
        yield
        return
    replaced = patch(scheduler, float(eta))
    for name, function in replaced.items():
        setattr(scheduler, name, function)
    try:
        yield
    finally:
        for name in replaced:
            delattr(scheduler, name)  # the class's own again
