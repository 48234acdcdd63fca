"""Eta for Euler a: diffusers' EulerAncestralDiscreteScheduler always takes k-diffusion's full ancestral
step (eta 1). With eta, k-diffusion splits the step into sigma_up = min(sigma_to, eta · s) and
sigma_down = sqrt(sigma_to² − sigma_up²), s being eta 1's sigma_up. Diffusers' own step runs unchanged,
then its result moves from eta 1's split to eta's: x + d · (down − down₁) + noise · (up − up₁), with
d = (x − x₀) / sigma_from and the noise its step drew (so eta 0 is plain Euler, drawing as A1111 does).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

ETA_SCHEDULERS = frozenset({"EulerAncestralDiscreteScheduler"})


def _split(sigma_from: torch.Tensor, sigma_to: torch.Tensor, eta: float) -> tuple[torch.Tensor, torch.Tensor]:
    full = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
    up = torch.minimum(sigma_to, eta * full)
    return up, (sigma_to**2 - up**2) ** 0.5


@contextmanager
def stepping_with(scheduler: Any, eta: float | None) -> Iterator[None]:
    """Inside the block this scheduler instance steps with `eta` (None or 1: unchanged)."""
    if type(scheduler).__name__ not in ETA_SCHEDULERS or eta is None or eta == 1:
        yield
        return
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
        x0 = output.pred_original_sample
        derivative = (sample.to(torch.float32) - x0) / sigma_from
        moved = output.prev_sample + (derivative * (down - down_1) + drawn[0] * (up - up_1)).to(
            output.prev_sample
        )
        result = type(output)(prev_sample=moved, pred_original_sample=x0)
        return result if return_dict else (moved, x0)

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step  # the class's own again
