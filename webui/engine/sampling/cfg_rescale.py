"""CFG Rescale (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample Steps are Flawed", §3.4).

Classifier-free guidance overshoots on models trained to zero terminal SNR: the guided prediction's
spread grows with the CFG scale and images burn (too dark, too saturated, hues pushed to a neighbour).
The fix rescales the guided prediction to the spread of the conditional one, blended by φ:
x = φ · cfg · std(cond) / std(cfg) + (1 − φ) · cfg, with diffusers' `rescale_noise_cfg`.

Only some diffusers pipelines take `guidance_rescale` (not img2img, inpaint or most ControlNet ones), so
a forward hook on the UNet hands diffusers a conditional half that its own CFG formula turns into the
rescaled result: cond' = uncond + (x − uncond) / cfg_scale. Its stage (engine.sampling.hooks:
Stage.CFG_RESCALE) puts it outside composable diffusion's hook, so it sees the folded [uncond, cond] batch.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg

from webui.engine.sampling.hooks import ModelHook, Stage


def rescaled_cond(uncond: torch.Tensor, cond: torch.Tensor, cfg_scale: float, phi: float) -> torch.Tensor:
    """The conditional prediction that makes uncond + cfg_scale × (cond' − uncond) the rescaled guidance."""
    guided = uncond + cfg_scale * (cond - uncond)
    return uncond + (rescale_noise_cfg(guided, cond, guidance_rescale=phi) - uncond) / cfg_scale


def hook(cfg_scale: float, phi: float, count: int) -> ModelHook | None:
    """The UNet hook of a run with `count` images per batch: rescale each CFG pass's guidance by φ.

    None when φ is 0 or there is no CFG (diffusers runs the cond half alone at scale <= 1)."""
    if phi == 0 or cfg_scale <= 1:
        return None

    def rescale(module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        sample = output[0] if isinstance(output, tuple) else output.sample
        if sample.shape[0] != 2 * count:  # not a CFG pass
            return output
        uncond, cond = sample.split(count)
        result = torch.cat([uncond, rescaled_cond(uncond, cond, cfg_scale, phi)])
        return (result, *output[1:]) if isinstance(output, tuple) else type(output)(sample=result)

    return ModelHook(Stage.CFG_RESCALE, after=rescale)
