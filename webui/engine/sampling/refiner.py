"""Refiner: A1111's switch to another checkpoint part-way through the steps (A1111 1.6's "Refiner").

The first `refiner_switch_at` of a pass's model passes run on the checkpoint, the rest on the refiner,
inside the same denoising loop: the scheduler (with its multistep history), the step count and the
progress run on as one schedule, and only the model changes, as A1111 swaps the model under its sampler
(it switches at the first model pass whose completed fraction reaches `refiner_switch_at`). The UNet's
forward is routed to the refiner's UNet with the refiner's own conditioning: its text encoders' encoding
of the same prompts (prompt editing and AND included) and, for SDXL UNets, its added conditioning (a
refiner's aesthetic scores, A1111's defaults 6 and 2.5). diffusers' denoising_end / denoising_start would
restart the scheduler at the switch (DPM++ 2M loses its history), cut by timestep instead of by step and
exist for SDXL pipelines only.

With hires fix the refiner takes part in the second pass only (A1111's default for "Hires fix: which pass
to enable refiner for"). The run's model hooks (CFG Rescale, extensions, AND) stay around the checkpoint's
UNet call and so act on the refiner's passes too; ControlNet residuals fit the checkpoint's UNet only and
are not given to the refiner; LoRAs stay on the checkpoint. The images decode with the refiner's VAE, the
model in use at the end (as in A1111).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from webui.core import prompts
from webui.core.errors import InvalidParameter, ModelNotFound
from webui.core.params import GenerationParams
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import conditioning
from webui.engine.sampling.prompt_conditioning import PromptConditioning

log = logging.getLogger(__name__)

# Said (in the log and the job's warnings) when the refiner is the checkpoint itself: A1111 then switches
# nothing and writes no "Refiner" keys, but says nothing either, so the choice looked broken.
SAME_AS_MODEL = "Refiner skipped: same checkpoint as the model"

# A1111's options sdxl_refiner_high_aesthetic_score / sdxl_refiner_low_aesthetic_score (the cond and
# uncond halves); diffusers' defaults are the same
AESTHETIC_SCORE, NEGATIVE_AESTHETIC_SCORE = 6.0, 2.5


@dataclass(frozen=True)
class Refiner:
    """The refiner of a run: the loaded checkpoint, where it takes over, and its infotext title."""

    loaded: LoadedCheckpoint
    switch_at: float
    title: str  # "name [hash]", as A1111 writes "Refiner"
    embeddings: conditioning.TextualInversions


def load(params: GenerationParams, manager: ModelManager, main: LoadedCheckpoint) -> Refiner | None:
    """The run's refiner, loaded (or taken from the cache); None when there is no switch to make: no
    refiner, switch at 1, or the refiner is the checkpoint itself (A1111 then switches nothing).

    Call it after the main checkpoint is loaded, and make that one current again afterwards
    (ModelManager.use)."""
    name = params.refiner_name
    if name is None or not params.refiner_used:
        return None
    try:
        entry = manager.registry.find(name)
    except ModelNotFound:
        known = ", ".join(entry.name for entry in manager.registry.entries) or "none"
        raise InvalidParameter(f"Refiner checkpoint {name!r} not found. Available: {known}") from None
    if entry.path == main.path:
        log.info("%s (%s)", SAME_AS_MODEL, entry.model_name)
        return None
    loaded = manager.get(entry.name)
    _check_pair(main, loaded, entry.name)
    title = f"{entry.model_name} [{manager.short_hash(loaded)}]"
    return Refiner(loaded, params.refiner_switch_at, title, manager.embeddings.for_pipe(loaded.pipe))


def notes(params: GenerationParams, refiner: Refiner | None) -> tuple[str, ...]:
    """What the user should know about the refiner `load` gave for `params`: a switch asked for that
    will not happen (load refuses every other reason with an error, so it is the checkpoint itself)."""
    return (SAME_AS_MODEL,) if params.refiner_used and refiner is None else ()


def _check_pair(main: LoadedCheckpoint, refiner: LoadedCheckpoint, name: str) -> None:
    """What the switch cannot bridge: another latent space, another prediction type, a refiner that
    needs inpainting inputs."""
    if refiner.architecture.inpainting:
        raise InvalidParameter(f"Refiner {name!r} is an inpainting checkpoint; choose a regular one")
    channels = (main.pipe.vae.config.latent_channels, refiner.pipe.vae.config.latent_channels)
    if channels[0] != channels[1]:
        raise InvalidParameter(
            f"Refiner {name!r} has {channels[1]} latent channels, the checkpoint {channels[0]}"
        )
    kinds = (main.architecture.prediction_type, refiner.architecture.prediction_type)
    if kinds[0] != kinds[1]:
        raise InvalidParameter(
            f"Refiner {name!r} predicts {kinds[1]}, the checkpoint {kinds[0]}: a switch between "
            "prediction types is not supported yet"
        )


def with_title(params: GenerationParams, refiner: Refiner | None) -> GenerationParams:
    """`params` with the refiner written as A1111 writes it ("name [hash]"), or without one when no switch
    happens (then no "Refiner" keys are written)."""
    if refiner is None:
        return params if params.refiner_checkpoint is None else params.replace(refiner_checkpoint=None)
    return params.replace(refiner_checkpoint=refiner.title)


class Switch:
    """One pass's model passes: the checkpoint's until the switch, the refiner's after it.

    `count` images per batch; `steps_run` the sampler steps of the pass (prompt editing's step numbers)."""

    def __init__(
        self,
        refiner: Refiner,
        manager: ModelManager,
        params: GenerationParams,
        count: int,
        steps_run: int,
    ) -> None:
        self.refiner = refiner
        self.manager = manager
        self.params = params
        self.count = count
        self.steps_run = steps_run
        self.passes = 0
        self.text: PromptConditioning | None = None  # the refiner's, encoded at the switch

    @property
    def switched(self) -> bool:
        return self.text is not None

    def forward(self, original: Callable[..., Any], pipe: Any) -> Callable[..., Any]:
        """The UNet forward of the pass (`pipe` runs the loop and knows its length)."""
        from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

        def routed(sample: torch.Tensor, timestep: Any, *args: Any, **kwargs: Any) -> Any:
            index, total = self.passes, max(pipe.num_timesteps, 1)
            self.passes += 1
            if index < switch_index(self.refiner.switch_at, total):
                return original(sample, timestep, *args, **kwargs)
            prediction = self._refine(sample, timestep, index * self.steps_run // total)
            return UNet2DConditionOutput(prediction) if kwargs.get("return_dict", True) else (prediction,)

        return routed

    def _refine(self, sample: torch.Tensor, timestep: Any, step: int) -> torch.Tensor:
        if self.text is None:  # the switch: the refiner on the device in its turn, its conditioning
            self.manager.use(self.refiner.loaded)
            loaded, embeddings = self.refiner.loaded, self.refiner.embeddings
            self.text = PromptConditioning(loaded, self.params, self.count, embeddings)
        unet = self.refiner.loaded.pipe.unet
        x = sample[:, : unet.config.in_channels]  # an inpainting checkpoint's mask channels are not its
        embeds, pooled, uncond_first = self._conditioning(step, x.shape[0])
        side = self.refiner.loaded.pipe.vae_scale_factor
        size = (x.shape[-2] * side, x.shape[-1] * side)
        added = _added_conditioning(unet.config, pooled, x.shape[0], self.count if uncond_first else 0, size)
        if added is not None:
            added = {key: value.to(x.device, unet.dtype) for key, value in added.items()}
        out = unet(
            x.to(unet.dtype),
            timestep,
            encoder_hidden_states=embeds.to(x.device, unet.dtype),
            added_cond_kwargs=added,
            return_dict=False,
        )[0]
        return out.to(sample.dtype)

    def _conditioning(self, step: int, batch: int) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        """(text embeddings, pooled or None, whether the uncond rows come first) for this pass's batch,
        in the layout the checkpoint's pass had: [uncond, cond] with CFG, [cond] without, and AND's
        [uncond, cond₁ … cond_K] (engine.sampling.composable)."""
        text = self.text
        assert text is not None
        if text.guidance is not None:
            conds = [schedule[prompts.entry_for_step(schedule, step)][1] for schedule in text.schedules]
            uncond = text.unconds[prompts.entry_for_step(text.unconds, step)][1]
            text.guidance.set(conds, uncond, text.empty)
            assert text.guidance.embeds is not None
            return text.guidance.embeds, text.guidance.pooled, True
        cond, uncond = conditioning.pair_for_step(text.conds, text.unconds, step, text.empty)
        parts = [uncond, cond] if batch == 2 * self.count else [cond]
        embeds = torch.cat([part.embeds.repeat(self.count, 1, 1) for part in parts])
        pooled_parts = [part.pooled for part in parts]
        pooled = (
            torch.cat([p.repeat(self.count, 1) for p in pooled_parts if p is not None])
            if all(p is not None for p in pooled_parts)
            else None
        )
        return embeds, pooled, len(parts) == 2


def _added_conditioning(
    config: Any, pooled: torch.Tensor | None, batch: int, uncond_rows: int, size: tuple[int, int]
) -> dict[str, torch.Tensor] | None:
    """SDXL's added conditioning: the pooled text and the size numbers, or with a refiner's UNet (5 numbers)
    the original size, crop and aesthetic score; None for UNets without it (SD1, SD2)."""
    if config.addition_embed_type != "text_time":
        return None
    if pooled is None:
        raise InvalidParameter("the refiner needs a pooled text embedding (an SDXL text encoder)")
    height, width = size
    numbers = (
        config.projection_class_embeddings_input_dim - pooled.shape[-1]
    ) // config.addition_time_embed_dim
    if numbers == 5:
        cond, uncond = (height, width, 0, 0, AESTHETIC_SCORE), (height, width, 0, 0, NEGATIVE_AESTHETIC_SCORE)
    else:
        cond = uncond = (height, width, 0, 0, height, width)
    rows = [uncond] * uncond_rows + [cond] * (batch - uncond_rows)
    return {"text_embeds": pooled, "time_ids": torch.tensor(rows, dtype=torch.float32)}


def switch_for(
    refiner: Refiner | None,
    manager: ModelManager,
    loaded: LoadedCheckpoint,
    params: GenerationParams,
    count: int,
    steps_run: int,
) -> Switch | None:
    """The switch of a pass on `loaded`; None without a refiner, in hires fix's first pass (A1111's
    default "Hires fix: which pass to enable refiner for" is the second pass), and when the pass already
    runs on the refiner (a hires checkpoint that is the refiner)."""
    if refiner is None or getattr(params, "enable_hr", False) or refiner.loaded is loaded:
        return None
    return Switch(refiner, manager, params, count, steps_run)


def decoder(switch: Switch | None, pipe: Any) -> Any:
    """The pipeline whose VAE decodes the pass: the model in use at the end, as in A1111."""
    return switch.refiner.loaded.pipe if switch is not None and switch.switched else pipe


@contextmanager
def routed(switch: Switch | None, pipe: Any) -> Iterator[None]:
    """The pass's UNet forward routed through `switch` while the block runs (nothing without one). The
    run's hooks stay registered on the checkpoint's UNet, so they wrap the refiner's passes too."""
    if switch is None:
        yield
        return
    unet = pipe.unet
    own = unet.__dict__.get("forward")  # accelerate's offload hook puts its own forward on the instance
    unet.forward = switch.forward(unet.forward, pipe)
    try:
        yield
    finally:
        if own is None:
            del unet.forward
        else:
            unet.forward = own


def switch_index(switch_at: float, total: int) -> int:
    """The first model pass of `total` that runs on the refiner (A1111: completed fraction >= switch_at)."""
    return min(math.ceil(switch_at * total), total)
