"""on_cfg_denoiser: a UNet forward pre-hook that shows each model pass to the extensions' callbacks.

A1111 calls these callbacks with the denoiser's input before every model evaluation; a pre-hook sees the
same thing in diffusers (the latent batch, the timestep and the text embeddings the pipeline is about to
use) and lets callbacks replace them. Its stage (engine.sampling.hooks: Stage.CFG_DENOISER) is the
outermost of the run's UNet hooks, so it sees the pipeline's own layout (CFG: unconditional half first)
before others such as ControlNet or composable diffusion act on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from webui.core.params import GenerationParams
from webui.engine.sampling.hooks import ModelHook, Stage
from webui.plugins.callbacks import CFGDenoiserParams

# What a pass predicted ([uncond, cond] with CFG) and its sampler step → the prediction to use instead.
AfterPass = Callable[[torch.Tensor, int], torch.Tensor]


def hook(
    pipe: Any,
    params: GenerationParams,
    count: int,
    callback: Callable[[CFGDenoiserParams], None],
    after: AfterPass | None = None,
) -> ModelHook:
    """The UNet hook by which `callback` gets a CFGDenoiserParams before each pass of a batch of `count`,
    and `after` (A1111's cfg_denoised / cfg_after_cfg, from webui.compat.a1111) the pass's prediction."""

    def pre_hook(module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        args, kwargs = list(args), dict(kwargs)
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs.get("timestep")
        embeds = args[2] if len(args) > 2 else kwargs.get("encoder_hidden_states")
        with_cfg = sample.shape[0] == 2 * count and embeds is not None and embeds.shape[0] == 2 * count
        uncond, cond = embeds.chunk(2) if with_cfg else (None, embeds)
        scheduler = pipe.scheduler
        index = getattr(scheduler, "step_index", None) or 0
        state = CFGDenoiserParams(
            x=sample,
            image_cond=None,
            sigma=_sigma(scheduler, index, timestep).expand(sample.shape[0]),
            sampling_step=_sampling_step(scheduler, params),
            total_sampling_steps=params.steps,
            text_cond=cond,
            text_uncond=uncond,
        )
        callback(state)
        new_embeds = torch.cat([state.text_uncond, state.text_cond]) if with_cfg else state.text_cond
        _put(args, kwargs, 0, "sample", state.x)
        if embeds is not None:
            _put(args, kwargs, 2, "encoder_hidden_states", new_embeds)
        return tuple(args), kwargs

    def post_hook(module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        assert after is not None
        sample = output[0] if isinstance(output, tuple) else output.sample
        changed = after(sample, _sampling_step(pipe.scheduler, params))
        if changed is sample:
            return None
        return (changed, *output[1:]) if isinstance(output, tuple) else type(output)(sample=changed)

    return ModelHook(Stage.CFG_DENOISER, before=pre_hook, after=post_hook if after is not None else None)


def _sampling_step(scheduler: Any, params: GenerationParams) -> int:
    """Second-order samplers make more passes than steps: the sampler step of this pass."""
    index = getattr(scheduler, "step_index", None) or 0
    passes = max(len(scheduler.timesteps), 1)
    return min(index * params.steps // passes, params.steps - 1)


def _put(args: list, kwargs: dict[str, Any], position: int, name: str, value: Any) -> None:
    if len(args) > position:
        args[position] = value
    else:
        kwargs[name] = value


def _sigma(scheduler: Any, index: int, timestep: Any) -> torch.Tensor:
    """The noise level of this pass: the scheduler's sigma table where it has one (k-diffusion style
    schedulers), else derived from alphas_cumprod at the timestep (DDIM, DDPM, …)."""
    sigmas = getattr(scheduler, "sigmas", None)
    if isinstance(sigmas, torch.Tensor) and index < len(sigmas):
        return sigmas[index].detach().float().cpu()
    alphas = getattr(scheduler, "alphas_cumprod", None)
    if alphas is not None and timestep is not None:
        t = int(torch.as_tensor(timestep).flatten()[0])
        alpha = alphas[min(max(t, 0), len(alphas) - 1)].float().cpu()
        return ((1 - alpha) / alpha).sqrt()
    return torch.tensor(float("nan"))
