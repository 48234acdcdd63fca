"""A1111's composable diffusion ("a red circle AND a blue background :0.8") inside diffusers' own CFG.

A1111 runs the UNet on the negative prompt and on every AND part, and guides with
uncond + cfg_scale × Σ wᵢ (condᵢ − uncond). diffusers runs [uncond, cond] and guides with
uncond + cfg_scale × (cond − uncond). So for the duration of a run, hooks on the UNet turn diffusers'
batch into [uncond, cond₁ … cond_K] (one UNet pass) and hand back
[uncond, uncond + Σ wᵢ (condᵢ − uncond)]: diffusers' own formula then gives A1111's result.
Torch hooks rather than a wrapper module: assigning pipe.unet would rewrite the pipeline's config. The hook
is the innermost of a run's UNet hooks (engine.sampling.hooks: Stage.COMPOSABLE).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from webui.core import prompts
from webui.engine.sampling.conditioning import Conditioning, pad_pair
from webui.engine.sampling.hooks import ModelHook, Stage


def prompt_parts(prompt: str) -> list[tuple[str, float]]:
    """The sub-prompts to encode with their weights. A prompt without AND or weight comes back untouched.

    A single part of weight 1 is plain CFG (is_plain). Parts weighing 0 add nothing to A1111's sum and are
    dropped, so "a AND b :0" is exactly "a"; when all weigh 0 the first stays (the guidance is then the
    negative prompt's prediction alone).
    """
    parts = prompts.split_and(prompt)
    if len(parts) == 1 and parts[0][0] == prompt.rstrip():
        return [(prompt, parts[0][1])]
    return [part for part in parts if part[1] != 0] or [(parts[0][0], 0.0)]


def is_plain(parts: Sequence[tuple[str, float]]) -> bool:
    return len(parts) == 1 and parts[0][1] == 1.0


class ComposableGuidance:
    """Hooks that expand the UNet's CFG batch into the AND parts and fold their predictions back.

    `count` images per batch. set() gives the conditionings of the current sampler step; the hooks
    ignore the text conditioning diffusers passes (prompt_embeds, SDXL's text_embeds) and use these.
    """

    def __init__(self, weights: Sequence[float], count: int) -> None:
        self.weights = tuple(weights)
        self.count = count
        self.embeds: torch.Tensor | None = None  # [uncond×count, cond₁×count, …]
        self.pooled: torch.Tensor | None = None  # the same for SDXL's pooled embeddings
        self.with_cfg = True  # whether the pass in flight came with diffusers' uncond half

    def set(self, conds: Sequence[Conditioning], uncond: Conditioning, empty: Conditioning) -> None:
        """The step's conditionings, padded to one length with `empty` as A1111 pads."""
        everything = [uncond, *conds]
        longest = max(everything, key=lambda c: c.chunks)
        padded = [pad_pair(c, longest, empty)[0] for c in everything]
        self.embeds = torch.cat([c.embeds.repeat(self.count, 1, 1) for c in padded])
        pooled = [c.pooled for c in padded]
        if all(p is not None for p in pooled):
            self.pooled = torch.cat([p.repeat(self.count, 1) for p in pooled])  # type: ignore[union-attr]

    def hook(self) -> ModelHook:
        """The UNet hook: expand the batch before the call, fold the prediction back after it."""
        return ModelHook(Stage.COMPOSABLE, before=self._expand, after=self._combine)

    def _expand(self, module: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        if self.embeds is None:
            raise RuntimeError("ComposableGuidance.set() must be called before the UNet runs")
        batch = args[0].shape[0]
        # With cfg_scale <= 1 diffusers runs the cond half only; the uncond pass is still needed here.
        self.with_cfg = batch == 2 * self.count
        parts = len(self.weights)

        def expand(value: Any) -> Any:
            if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == batch:
                cond = value[batch - self.count :]
                head = value[: self.count] if self.with_cfg else cond
                return torch.cat([head, *[cond] * parts])
            if isinstance(value, (list, tuple)):  # e.g. ControlNet residuals
                return type(value)(expand(v) for v in value)
            if isinstance(value, dict):
                return {key: expand(v) for key, v in value.items()}
            return value

        args = tuple(expand(a) for a in args)
        kwargs = {key: expand(v) for key, v in kwargs.items()}
        dtype = kwargs["encoder_hidden_states"].dtype
        kwargs["encoder_hidden_states"] = self.embeds.to(args[0].device, dtype)
        added = kwargs.get("added_cond_kwargs")
        if added and "text_embeds" in added and self.pooled is not None:
            kwargs["added_cond_kwargs"] = {**added, "text_embeds": self.pooled.to(added["text_embeds"])}
        return args, kwargs

    def _combine(self, module: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
        sample = output[0] if isinstance(output, tuple) else output.sample
        uncond, *conds = sample.split(self.count)
        combined = uncond
        for weight, cond in zip(self.weights, conds):
            combined = combined + weight * (cond - uncond)
        result = torch.cat([uncond, combined]) if self.with_cfg else combined
        return (result, *output[1:]) if isinstance(output, tuple) else type(output)(sample=result)
