"""One generation run: params in, images and their infotexts out. Knows models, not users.

txt2img, img2img and inpaint share everything here (LoRA, embeddings, prompt editing, AND, seeds, step
reports, interrupt, decoding); what differs is a Task: the pipeline, what it is given beyond the shared
arguments, and how its decoded images are finished (engine.img2img for img2img and inpaint).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image

from webui import __version__
from webui.core import infotext, prompts, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Img2Img, Result
from webui.engine.checkpoints import memory
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.controlnet import units as controlnet
from webui.engine.networks.lora import TAG_KINDS, AppliedLoras, LoraLibrary, LoraRequest
from webui.engine.sampling import cfg_rescale, composable, conditioning, img2img, previews
from webui.engine.sampling.schedulers import make_scheduler

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


class RunHooks(Protocol):
    """Extension points inside a run; webui.plugins implements them (the engine knows nothing of plugins)."""

    def before_batch(self, params: GenerationParams, batch: int, seeds: Sequence[int]) -> GenerationParams:
        """The params this batch runs with (a script may have changed them)."""
        ...

    def denoising(self, pipe: Any, params: GenerationParams, count: int) -> AbstractContextManager[None]:
        """Active while a batch of `count` images denoises (per-step hooks on the UNet)."""
        ...

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        """Each decoded image: the image to keep and the params its infotext is built from."""
        ...


class NoHooks:
    """A run without extensions."""

    def before_batch(self, params: GenerationParams, batch: int, seeds: Sequence[int]) -> GenerationParams:
        return params

    def denoising(self, pipe: Any, params: GenerationParams, count: int) -> AbstractContextManager[None]:
        return nullcontext()

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        return image, params


@dataclass(frozen=True)
class ModelInfo:
    """What the infotext says about the checkpoint that made an image."""

    name: str
    short_hash: str
    vae_name: str | None = None  # a VAE file in use instead of the checkpoint's own
    vae_hash: str | None = None


def resolve_seed(seed: int) -> int:
    return random.randrange(MAX_SEED + 1) if seed == -1 else seed


def initial_noise(
    seeds: list[int], shape: tuple[int, int, int]
) -> tuple[torch.Tensor, list[torch.Generator]]:
    """One CPU generator per image, seeded with that image's seed.

    Drawing on the CPU makes the noise identical on every device (A1111's "RNG: CPU"), and one generator
    per image makes an image independent of the batch it was made in. The same generators then feed the
    per-step noise of ancestral and SDE samplers.
    """
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    noise = torch.stack([torch.randn(shape, generator=g, dtype=torch.float32) for g in generators])
    return noise, generators


class Task(Protocol):
    """What one run's kind (txt2img, img2img, inpaint) decides; the rest of the run is shared."""

    params: GenerationParams  # the params as they are carried out (img2img: batch size = number of inputs, …)
    pipe: Any  # the pipeline that denoises (built on the checkpoint's components)
    steps_run: int  # the sampler steps that actually run (img2img: steps × denoising strength)
    warnings: tuple[str, ...]  # what the user should know (e.g. an empty mask)
    infotext_fields: Mapping[str, infotext.Value]  # beyond what params give (e.g. Conditional mask weight)

    def inputs(
        self, noise: torch.Tensor, generators: list[torch.Generator], seeds: list[int]
    ) -> dict[str, Any]:
        """The pipeline's arguments for one batch beyond the shared ones; `noise` is each image's seed
        noise on the pipeline's device, `generators` the CPU generators it was drawn from."""
        ...

    def finish(self, images: list[Image.Image]) -> list[Image.Image]:
        """The batch's decoded images as the user gets them (inpaint: pasted back into the input)."""
        ...


@dataclass
class Txt2ImgTask:
    """txt2img: the checkpoint's own pipeline, starting from the seed noise."""

    params: GenerationParams
    pipe: Any
    warnings: tuple[str, ...] = ()
    infotext_fields: Mapping[str, infotext.Value] = field(default_factory=dict)

    @property
    def steps_run(self) -> int:
        return self.params.steps

    def inputs(
        self, noise: torch.Tensor, generators: list[torch.Generator], seeds: list[int]
    ) -> dict[str, Any]:
        size = {"width": self.params.width, "height": self.params.height}
        return {**size, "latents": noise, "generator": generators}

    def finish(self, images: list[Image.Image]) -> list[Image.Image]:
        return images


def make_task(params: GenerationParams, loaded: LoadedCheckpoint) -> Task:
    """img2img and inpaint, and every run of an inpainting checkpoint, go through engine.img2img."""
    if isinstance(params, Img2Img) or loaded.architecture.inpainting:
        with torch.inference_mode():
            return img2img.Img2ImgTask(params, loaded)
    return Txt2ImgTask(params, loaded.pipe)


def run(
    params: GenerationParams, manager: ModelManager, job: StepReporter, hooks: RunHooks | None = None
) -> Result:
    """txt2img, or img2img / inpaint for Img2Img params: n_iter batches of batch_size images, seeds seed,
    seed+1, …

    The prompts' `<lora:…>` tags are looked up in the manager's LoRA library before anything loads.
    `hooks` let extensions act before each batch, on each model pass and on each image."""
    params.validate()
    hooks = hooks or NoHooks()
    loras = manager.loras
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    lora_requests = _lora_requests(params, loras)
    loaded = manager.get(params.sd_model_checkpoint)
    task = make_task(params, loaded)  # input images are checked and encoded before LoRAs are applied
    control = _control_plan(params, manager, loaded, task)  # ControlNet models and maps; None without units
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
    params = task.params.replace(
        seed=resolve_seed(params.seed), sampler_name=choice.sampler_name, scheduler=choice.scheduler
    )

    images: list[Image.Image] = []
    seeds: list[int] = []
    image_params: list[
        GenerationParams
    ] = []  # each image's params for its infotext (extensions may add to them)
    job.set_batches(params.n_iter)
    for batch in range(params.n_iter):
        if batch:
            job.next_batch()
        if job.interrupted:
            break
        batch_seeds = [params.seed + batch * params.batch_size + i for i in range(params.batch_size)]
        batch_params = hooks.before_batch(params, batch, batch_seeds)
        batch_images, batch_used = _run_batch(
            batch_params, manager, loaded, task, choice, batch_seeds, job, embeddings, hooks, control
        )
        for image, seed in zip(batch_images, batch_seeds):
            image, for_infotext = hooks.after_image(batch_params, image, seed)
            images.append(image)
            image_params.append(for_infotext)
        used += [name for name in batch_used if name not in used]
        seeds += batch_seeds
    ti_hashes = manager.embeddings.infotext_hashes(used)
    lora_hashes = applied.infotext_hashes()
    extra = {**task.infotext_fields, **(control.infotext_entries() if control else {})}
    texts = tuple(
        build_infotext(used_params, seed, model, ti_hashes, lora_hashes, extra)
        for used_params, seed in zip(image_params, seeds)
    )
    return Result(
        params=params,
        images=tuple(images),
        infotexts=texts,
        seeds=tuple(seeds),
        interrupted=job.interrupted,
        warnings=(*applied.warnings, *task.warnings),
    )


def _control_plan(
    params: GenerationParams, manager: ModelManager, loaded: LoadedCheckpoint, task: Task
) -> controlnet.ControlPlan | None:
    """The enabled ControlNet units' models and maps at the output size; img2img's first input image
    serves the units without an image of their own, and "Only masked" cuts them to its region."""
    first_input = next(iter(params.init_images), None) if isinstance(params, Img2Img) else None
    prepared = task.prepared if isinstance(task, img2img.Img2ImgTask) else None
    region = prepared.region if prepared is not None and prepared.only_masked else None
    device, size = manager.device, (params.width, params.height)
    units, library = params.control_units, manager.controlnets
    return controlnet.prepare(units, library, loaded, device.device, device.dtype, size, first_input, region)


def _run_batch(
    params: GenerationParams,
    manager: ModelManager,
    loaded: LoadedCheckpoint,
    task: Task,
    choice: samplers.SamplerChoice,
    seeds: list[int],
    job: StepReporter,
    embeddings: conditioning.TextualInversions,
    hooks: RunHooks,
    control: controlnet.ControlPlan | None = None,
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """The batch's images and the textual-inversion embeddings its prompts used."""
    pipe = task.pipe
    # A fresh scheduler each batch: schedulers keep per-run state. DPM++ SDE takes its seeds here: one
    # Brownian tree per image (as A1111), so an image does not depend on the batch it was made in.
    pipe.scheduler = make_scheduler(choice, pipe.scheduler.config, seed=seeds)
    factor = pipe.vae_scale_factor
    shape = (pipe.vae.config.latent_channels, params.height // factor, params.width // factor)
    noise, generators = initial_noise(seeds, shape)
    with torch.inference_mode():
        text = PromptConditioning(loaded, params, len(seeds), embeddings)

    def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        # a lazy preview: the job decides (by the live-preview setting) whether to make the image
        preview = previews.LatentPreview(tensors["latents"], loaded.architecture.family)
        job.report(index + 1, pipeline.num_timesteps, preview)
        if text.changes_during_run:
            # Second-order samplers run more model passes than steps: map the pass to its sampler step.
            # img2img counts the steps that run from 0 against the whole schedule, as A1111 does.
            next_step = (index + 1) * task.steps_run // pipeline.num_timesteps
            text.replace(tensors, next_step, pipeline.do_classifier_free_guidance)
        if job.interrupted or job.skipped:
            pipeline._interrupt = True  # diffusers' own early stop: skip the remaining steps, then decode
        return tensors

    # --upcast-sampling: float32 latents, the half-precision UNet under autocast (a no-op otherwise)
    latents_dtype = memory.sampling_dtype(manager.memory, manager.device, pipe.unet.dtype)
    autocast = memory.sampling_autocast(manager.memory, manager.device, pipe.unet.dtype)
    with torch.inference_mode():
        inputs = task.inputs(noise.to(pipe.device, latents_dtype), generators, seeds)
        # ControlNet's UNet hook first: it must see diffusers' own batch (composable AND expands it)
        controlled = control.installed(pipe, len(seeds)) if control else nullcontext()
        rescaled = cfg_rescale.installed(pipe.unet, params.cfg_scale, params.cfg_rescale, len(seeds))
        # CFG Rescale's hook after composable's: it rescales the folded [uncond, cond] batch
        with (
            autocast,
            controlled,
            hooks.denoising(pipe, params, len(seeds)),
            text.guiding(pipe.unet),
            rescaled,
        ):
            output = pipe(
                **text.kwargs(0),
                **inputs,
                num_inference_steps=params.steps,
                guidance_scale=params.cfg_scale,
                callback_on_step_end=on_step_end,
                callback_on_step_end_tensor_inputs=[*text.tensor_inputs(), "latents"],
                output_type="latent",  # decoded here: tiling, NaN retry (engine.memory)
            )
        # the checkpoint's own pipeline decodes: with --medvram its offload hooks put the VAE back
        images = memory.decode_latents(loaded.pipe, output.images, manager.vae_tiling_threshold)
    return task.finish(images), text.embeddings_used


class PromptConditioning:
    """The prompt and negative prompt encoded the A1111 way, per sampler step (prompt editing).

    As A1111, Clip skip applies to SD1 only: SD2 and SDXL were trained on fixed text-encoder layers.
    A prompt with AND (composable diffusion) encodes each part with its own schedule and guides through
    engine.composable; without AND the pipeline gets the conditioning directly, as before.
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


def _lora_requests(params: GenerationParams, loras: LoraLibrary | None) -> list[LoraRequest]:
    """The LoRAs both prompts' tags ask for; tags this version cannot apply are refused, never ignored."""
    tags = [
        tag
        for text in (params.prompt, params.negative_prompt)
        for tag in prompts.extract_network_tags(text)[1]
    ]
    refused = [tag for tag in tags if loras is None or tag.kind not in TAG_KINDS]
    if refused:
        names = ", ".join(f"<{tag.kind}:{tag.name}>" for tag in refused)
        raise InvalidParameter(f"Extra networks are not supported yet ({names}); remove the tag to generate")
    return loras.resolve(tags) if loras else []


def build_infotext(
    params: GenerationParams,
    seed: int,
    model: ModelInfo,
    ti_hashes: str | None = None,
    lora_hashes: str | None = None,
    extra: Mapping[str, infotext.Value] | None = None,
) -> str:
    return infotext.build(
        params,
        seed=seed,
        model_name=model.name,
        model_hash=model.short_hash,
        vae_name=model.vae_name,
        vae_hash=model.vae_hash,
        # the noise comes from a CPU generator (see initial_noise)
        extra={**(extra or {}), "RNG": "CPU", "Lora hashes": lora_hashes, "TI hashes": ti_hashes},
        version=f"v{__version__}",
    )
