"""One generation run: params in, images and their infotexts out. Knows models, not users."""

from __future__ import annotations

import random
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image

from webui import __version__
from webui.core import infotext, prompts, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import Result, Txt2Img
from webui.engine import composable, conditioning, memory
from webui.engine.loader import LoadedCheckpoint
from webui.engine.lora import TAG_KINDS, AppliedLoras, LoraLibrary, LoraRequest
from webui.engine.manager import ModelManager
from webui.engine.schedulers import make_scheduler

MAX_SEED = 2**32 - 1


class StepReporter(Protocol):
    """What the engine needs from a running job (services.jobs.Job satisfies it)."""

    @property
    def interrupted(self) -> bool: ...

    @property
    def skipped(self) -> bool: ...

    def report(self, step: int, total: int, preview: Any | None = None) -> None: ...

    def set_batches(self, count: int) -> None: ...

    def next_batch(self) -> None: ...


@dataclass(frozen=True)
class ModelInfo:
    """What the infotext says about the checkpoint that made an image."""

    name: str
    short_hash: str
    vae_name: str | None = None  # a VAE file in use instead of the checkpoint's own
    vae_hash: str | None = None


def resolve_seed(seed: int) -> int:
    return random.randrange(MAX_SEED + 1) if seed == -1 else seed


def initial_noise(seeds: list[int], shape: tuple[int, int, int]) -> tuple[torch.Tensor, list[torch.Generator]]:
    """One CPU generator per image, seeded with that image's seed.

    Drawing on the CPU makes the noise identical on every device (A1111's "RNG: CPU"), and one generator
    per image makes an image independent of the batch it was made in. The same generators then feed the
    per-step noise of ancestral and SDE samplers.
    """
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    noise = torch.stack([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return noise, generators


def run(params: Txt2Img, manager: ModelManager, job: StepReporter) -> Result:
    """txt2img: n_iter batches of batch_size images, seeds seed, seed+1, …

    The prompts' `<lora:…>` tags are looked up in the manager's LoRA library before anything loads."""
    params.validate()
    loras = manager.loras
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    lora_requests = _lora_requests(params, loras)
    loaded = manager.get(params.sd_model_checkpoint)
    applied = loras.apply(loaded.pipe, lora_requests) if loras else AppliedLoras()
    entry = manager.entry_for(loaded)
    vae = manager.vae_in_use(loaded)
    model = ModelInfo(
        name=entry.model_name,
        short_hash=manager.short_hash(loaded),
        vae_name=vae.name if vae else None,
        vae_hash=manager.vaes.short_hash(vae) if vae else None,
    )
    embeddings = manager.embeddings.for_pipe(loaded.pipe)
    used: list[str] = []  # textual-inversion embeddings the prompts used
    params = params.replace(seed=resolve_seed(params.seed), sampler_name=choice.sampler_name, scheduler=choice.scheduler)

    images: list[Image.Image] = []
    seeds: list[int] = []
    job.set_batches(params.n_iter)
    for batch in range(params.n_iter):
        if batch:
            job.next_batch()
        if job.interrupted:
            break
        batch_seeds = [params.seed + batch * params.batch_size + i for i in range(params.batch_size)]
        batch_images, batch_used = _run_batch(params, manager, loaded, choice, batch_seeds, job, embeddings)
        images += batch_images
        used += [name for name in batch_used if name not in used]
        seeds += batch_seeds
    ti_hashes = manager.embeddings.infotext_hashes(used)
    lora_hashes = applied.infotext_hashes()
    texts = tuple(build_infotext(params, seed, model, ti_hashes, lora_hashes) for seed in seeds)
    return Result(
        params=params,
        images=tuple(images),
        infotexts=texts,
        seeds=tuple(seeds),
        interrupted=job.interrupted,
        warnings=tuple(applied.warnings),
    )


def _run_batch(
    params: Txt2Img,
    manager: ModelManager,
    loaded: LoadedCheckpoint,
    choice: samplers.SamplerChoice,
    seeds: list[int],
    job: StepReporter,
    embeddings: conditioning.TextualInversions,
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """The batch's images and the textual-inversion embeddings its prompts used."""
    pipe = loaded.pipe
    # A fresh scheduler each batch: schedulers keep per-run state. DPM++ SDE takes its seeds here: one
    # Brownian tree per image (as A1111), so an image does not depend on the batch it was made in.
    pipe.scheduler = make_scheduler(choice, pipe.scheduler.config, seed=seeds)
    factor = pipe.vae_scale_factor
    shape = (pipe.vae.config.latent_channels, params.height // factor, params.width // factor)
    noise, generators = initial_noise(seeds, shape)
    with torch.inference_mode():
        text = PromptConditioning(loaded, params, len(seeds), embeddings)

    def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        job.report(index + 1, pipeline.num_timesteps)
        if text.changes_during_run:
            # Second-order samplers run more model passes than steps: map the pass to its sampler step.
            next_step = (index + 1) * params.steps // pipeline.num_timesteps
            text.replace(tensors, next_step, pipeline.do_classifier_free_guidance)
        if job.interrupted or job.skipped:
            pipeline._interrupt = True  # diffusers' own early stop: skip the remaining steps, then decode
        return tensors

    # --upcast-sampling: float32 latents, the half-precision UNet under autocast (a no-op otherwise)
    latents_dtype = memory.sampling_dtype(manager.memory, manager.device, pipe.unet.dtype)
    autocast = memory.sampling_autocast(manager.memory, manager.device, pipe.unet.dtype)
    with torch.inference_mode():
        with autocast, text.guiding(pipe.unet):
            output = pipe(
                **text.kwargs(0),
                num_inference_steps=params.steps,
                guidance_scale=params.cfg_scale,
                width=params.width,
                height=params.height,
                latents=noise.to(pipe.device, latents_dtype),
                generator=generators,
                callback_on_step_end=on_step_end,
                callback_on_step_end_tensor_inputs=text.tensor_inputs(),
                output_type="latent",  # decoded here: tiling, NaN retry (engine.memory)
            )
        images = memory.decode_latents(pipe, output.images, manager.vae_tiling_threshold)
    return images, text.embeddings_used


class PromptConditioning:
    """The prompt and negative prompt encoded the A1111 way, per sampler step (prompt editing).

    As A1111, Clip skip applies to SD1 only: SD2 and SDXL were trained on fixed text-encoder layers.
    A prompt with AND (composable diffusion) encodes each part with its own schedule and guides through
    engine.composable; without AND the pipeline gets the conditioning directly, as before.
    """

    def __init__(
        self,
        loaded: LoadedCheckpoint,
        params: Txt2Img,
        count: int,
        embeddings: conditioning.TextualInversions | None = None,
    ) -> None:
        pipe = loaded.pipe
        skip = params.clip_skip if loaded.architecture.family == "sd1" else 1
        prompt, negative = _plain_text(params.prompt), _plain_text(params.negative_prompt)
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

    def guiding(self, unet: torch.nn.Module) -> AbstractContextManager[None]:
        """Where the UNet must run for this conditioning: hooked for composable diffusion."""
        return self.guidance.installed(unet) if self.guidance else nullcontext()

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


def _plain_text(prompt: str) -> str:
    """The prompt without its extra-network tags (applied separately, see _lora_requests)."""
    return prompts.extract_network_tags(prompt)[0]


def _lora_requests(params: Txt2Img, loras: LoraLibrary | None) -> list[LoraRequest]:
    """The LoRAs both prompts' tags ask for; tags this version cannot apply are refused, never ignored."""
    tags = [tag for text in (params.prompt, params.negative_prompt) for tag in prompts.extract_network_tags(text)[1]]
    refused = [tag for tag in tags if loras is None or tag.kind not in TAG_KINDS]
    if refused:
        names = ", ".join(f"<{tag.kind}:{tag.name}>" for tag in refused)
        raise InvalidParameter(f"Extra networks are not supported yet ({names}); remove the tag to generate")
    return loras.resolve(tags) if loras else []


def build_infotext(
    params: Txt2Img, seed: int, model: ModelInfo, ti_hashes: str | None = None, lora_hashes: str | None = None
) -> str:
    return infotext.build(
        params,
        seed=seed,
        model_name=model.name,
        model_hash=model.short_hash,
        vae_name=model.vae_name,
        vae_hash=model.vae_hash,
        # the noise comes from a CPU generator (see initial_noise)
        extra={"RNG": "CPU", "Lora hashes": lora_hashes, "TI hashes": ti_hashes},
        version=f"v{__version__}",
    )
