"""A1111's on_cfg_denoised and on_cfg_after_cfg on each model pass (webui.plugins.denoiser runs them
after the UNet call, outside every other hook of the run).

A1111 shows the denoiser's output of the whole batch (cfg_denoised), then the result of classifier-free
guidance (cfg_after_cfg), and lets callbacks replace either. Here the model predicts noise (or v), as
diffusers' UNet does, in the pipeline's layout ([uncond, cond] with CFG), and diffusers combines the two
halves itself afterwards; so a replaced guidance result goes back as the conditional half that diffusers'
formula turns into it: cond' = uncond + (x - uncond) / cfg_scale (as engine.sampling.cfg_rescale does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from webui.compat.a1111.modules.script_callbacks import AfterCFGCallbackParams, CFGDenoisedParams
from webui.core.params import GenerationParams

if TYPE_CHECKING:
    from webui.compat.a1111.state import CompatState


def after_pass(
    compat: CompatState, params: GenerationParams, count: int
) -> Callable[[torch.Tensor, int], torch.Tensor] | None:
    """What each pass of a batch of `count` goes through; None without such callbacks."""
    if not (compat.callbacks.get("cfg_denoised") or compat.callbacks.get("cfg_after_cfg")):
        return None
    scale = params.cfg_scale

    def each(prediction: torch.Tensor, step: int) -> torch.Tensor:
        denoised = CFGDenoisedParams(prediction, step, params.steps)
        compat.run_callbacks("cfg_denoised", denoised)
        prediction = denoised.x
        with_cfg = prediction.shape[0] == 2 * count
        uncond, cond = prediction.split(count) if with_cfg else (None, prediction)
        guided = cond if uncond is None else uncond + scale * (cond - uncond)
        combined = AfterCFGCallbackParams(guided, step, params.steps)
        compat.run_callbacks("cfg_after_cfg", combined)
        if combined.x is guided:
            return prediction
        if uncond is None:
            return combined.x
        return torch.cat([uncond, uncond + (combined.x - uncond) / scale])

    return each
