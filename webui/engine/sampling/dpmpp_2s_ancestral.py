"""DPM++ 2S a (k-diffusion's sample_dpmpp_2s_ancestral), which diffusers lacks, on diffusers' DPM2 a.

Both samplers take the same two model passes a step: one at sigma, one at the midpoint in log sigma
between sigma and sigma_down (their ancestral step's deterministic target), reached by the same first
half-step, x₂ = (s_mid / s) · x + (1 − s_mid / s) · D. They differ only in the second half-step:
DPM2 a follows the derivative at the midpoint, x + d₂ · (s_down − s); DPM-Solver++(2S) uses the midpoint's
denoised image D₂ directly, D₂ + (s_down / s) · (x − D₂). Both then add noise · s_up (the same draw).
So this scheduler is KDPM2AncestralDiscreteScheduler with its second half-step's result moved from the
one to the other; schedules, timesteps, noise and eta (engine.sampling.ancestral_eta) are DPM2 a's.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import KDPM2AncestralDiscreteScheduler


class DPMSolver2SAncestralScheduler(KDPM2AncestralDiscreteScheduler):
    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> Any:
        if self.step_index is None:
            self._init_step_index(timestep)
        if self.state_in_first_order:  # the same first half-step
            return super().step(model_output, timestep, sample, generator, return_dict)
        start, index = self.sample, self.step_index
        sigma = self.sigmas[index - 1]
        sigma_mid, sigma_down = self.sigmas_interpol[index - 1], self.sigmas_down[index - 1]
        output = super().step(model_output, timestep, sample, generator, return_dict=True)
        denoised = output.pred_original_sample
        dpm2 = start + (sample - denoised) / sigma_mid * (sigma_down - sigma)
        dpmpp = denoised + (sigma_down / sigma) * (start - denoised)
        moved = output.prev_sample + (dpmpp - dpm2).to(output.prev_sample)
        if not return_dict:
            return moved, denoised
        return type(output)(prev_sample=moved, pred_original_sample=denoised)
