"""A run's text conditioning: the prompt and negative prompt encoded the A1111 way for every sampler step
(prompt editing), and composable diffusion's UNet hook when the prompt has AND.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from webui.core import prompts
from webui.core.params import GenerationParams
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.sampling import composable, conditioning
from webui.engine.sampling.hooks import ModelHook


class EncodingStopped(Exception):
    """Interrupt or Skip came while the prompts were encoded: the batch makes no image."""


@contextmanager
def stoppable(pipe: Any, stop: Callable[[], bool]) -> Iterator[None]:
    """Check `stop()` before each text-encoder pass: a long prompt encodes chunk by chunk (hundreds of
    passes for a 64 KB prompt), and Interrupt must not wait for all of them."""

    def check(module: Any, args: Any) -> None:
        if stop():
            raise EncodingStopped

    models = [encoder.model for encoder in conditioning.text_encoders(pipe)]
    handles = [model.register_forward_pre_hook(check) for model in models]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class PromptConditioning:
    """The prompt and negative prompt encoded the A1111 way, per sampler step (prompt editing).

    As A1111, Clip skip applies to SD1 only: SD2 and SDXL were trained on fixed text-encoder layers.
    A prompt with AND (composable diffusion) encodes each part with its own schedule and guides through
    engine.sampling.composable; without AND the pipeline gets the conditioning directly, as before.
    """

    def __init__(
        self,
        loaded: LoadedCheckpoint,
        params: GenerationParams,
        count: int,
        embeddings: conditioning.TextualInversions | None = None,
    ) -> None:
        pipe = loaded.pipe
        skip = params.clip_skip if loaded.architecture.family == "sd1" else 1
        prompt, negative = plain_text(params.prompt), plain_text(params.negative_prompt)
        parts = composable.prompt_parts(prompt)
        self.schedules = [
            conditioning.encode_schedule(pipe, text, params.steps, skip, embeddings=embeddings)
            for text, _ in parts
        ]
        self.conds = self.schedules[0]
        self.unconds = conditioning.encode_schedule(
            pipe, negative, params.steps, skip, negative=True, embeddings=embeddings
        )
        self.empty = conditioning.encode_prompt(pipe, "", skip)
        self.count = count
        self.sdxl = loaded.architecture.family == "sdxl"
        plain = composable.is_plain(parts)
        self.guidance = None if plain else composable.ComposableGuidance([w for _, w in parts], count)
        if self.guidance:
            self._set_guidance(0)

    @property
    def embeddings_used(self) -> tuple[str, ...]:
        entries = [*(entry for schedule in self.schedules for entry in schedule), *self.unconds]
        names = [name for _, cond in entries for name in cond.embeddings]
        return tuple(dict.fromkeys(names))

    @property
    def changes_during_run(self) -> bool:
        return any(len(schedule) > 1 for schedule in self.schedules) or len(self.unconds) > 1

    def guidance_hook(self) -> ModelHook | None:
        """The UNet hook this conditioning needs: composable diffusion's, for a prompt with AND."""
        return self.guidance.hook() if self.guidance else None

    def tensor_inputs(self) -> list[str]:
        """What on_step_end must be allowed to replace in diffusers' denoising loop."""
        return ["prompt_embeds", "add_text_embeds"] if self.sdxl else ["prompt_embeds"]

    def kwargs(self, step: int) -> dict[str, torch.Tensor]:
        pair = conditioning.pair_for_step(self.conds, self.unconds, step, self.empty)
        return conditioning.pipeline_kwargs(*pair, self.count)

    def replace(self, tensors: dict[str, Any], step: int, with_cfg: bool) -> None:
        """Swap in the conditioning of `step` (diffusers keeps uncond first when it batches CFG)."""
        if self.guidance:
            self._set_guidance(step)  # the hooks feed the UNet; diffusers' own tensors go unused
            return
        kwargs = self.kwargs(step)
        embeds, pooled = kwargs["prompt_embeds"], kwargs.get("pooled_prompt_embeds")
        if with_cfg:
            embeds = torch.cat([kwargs["negative_prompt_embeds"], embeds])
            pooled = None if pooled is None else torch.cat([kwargs["negative_pooled_prompt_embeds"], pooled])
        tensors["prompt_embeds"] = embeds.to(tensors["prompt_embeds"])
        if pooled is not None:
            tensors["add_text_embeds"] = pooled.to(tensors["add_text_embeds"])

    def _set_guidance(self, step: int) -> None:
        assert self.guidance is not None
        conds = [schedule[prompts.entry_for_step(schedule, step)][1] for schedule in self.schedules]
        uncond = self.unconds[prompts.entry_for_step(self.unconds, step)][1]
        self.guidance.set(conds, uncond, self.empty)


def plain_text(prompt: str) -> str:
    """The prompt without its extra-network tags (LoRAs are applied separately: engine.sampling.generate)."""
    return prompts.extract_network_tags(prompt)[0]
