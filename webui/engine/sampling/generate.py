"""One generation run: params in, images and their infotexts out. Knows models, not users.

txt2img, img2img and inpaint share everything here (LoRA, embeddings, prompt editing, AND, seeds, step
reports, interrupt, decoding); what differs is a Task: the pipeline, what it is given beyond the shared
arguments, and how its decoded images are finished (engine.sampling.img2img for img2img and inpaint).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from PIL import Image

from webui import __version__
from webui.core import infotext, prompts, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import MAX_SEED, GenerationParams, Img2Img
from webui.core.requests import Result
from webui.engine.checkpoints import memory
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.controlnet import guidance as controlnet
from webui.engine.networks.lora import TAG_KINDS, AppliedLoras, LoraLibrary, LoraRequest
from webui.engine.sampling import (
    cfg_rescale,
    conditioning,
    hires,
    hires_upscale,
    img2img,
    noise,
    previews,
    refiner,
)
from webui.engine.sampling.hooks import ModelHooks
from webui.engine.sampling.prompt_conditioning import EncodingStopped, PromptConditioning, stoppable
from webui.engine.sampling.run_hooks import FinishedBatch, NoHooks, RunHooks, StepReporter
from webui.engine.sampling.schedulers import make_scheduler
from webui.engine.sampling.tiling import circular_padding

if TYPE_CHECKING:
    from webui.engine.upscaling.catalog import UpscalerCatalog

# Not an A1111 version: A1111 ignores a Version it cannot parse, while "v0.1.0" read as older than its
# 1.6.0 and switched on its back-compat options when our images were pasted there
INFOTEXT_VERSION = f"webui-diffusers {__version__}"


@dataclass(frozen=True)
class ModelInfo:
    """What the infotext says about the checkpoint that made an image."""

    name: str
    short_hash: str
    vae_name: str | None = None  # a VAE file in use instead of the checkpoint's own
    vae_hash: str | None = None


def resolve_seed(seed: int) -> int:
    return random.randrange(MAX_SEED + 1) if seed == -1 else seed


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
        """The pipeline's arguments for one batch beyond the shared ones; `noise` is each image's initial
        noise on the pipeline's device (engine.sampling.noise), `generators` CPU generators seeded with the
        seeds (the pipelines' own draws come from the batch's ImageRNG while it runs)."""
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
    """img2img and inpaint, and every run of an inpainting checkpoint, go through engine.sampling.img2img."""
    if isinstance(params, Img2Img) or loaded.architecture.inpainting:
        with torch.inference_mode():
            return img2img.Img2ImgTask(params, loaded)
    if loaded.architecture.refiner:  # its pipeline refines latents; A1111's txt2img with it is noise
        raise InvalidParameter(
            "an SDXL refiner checkpoint cannot make an image from noise: choose it as Refiner, or use img2img"
        )
    return Txt2ImgTask(params, loaded.pipe)


def run(
    params: GenerationParams,
    manager: ModelManager,
    job: StepReporter,
    hooks: RunHooks | None = None,
    noise_options: noise.NoiseOptions | None = None,
    upscalers: UpscalerCatalog | None = None,
) -> Result:
    """txt2img, or img2img / inpaint for Img2Img params: n_iter batches of batch_size images, seeds seed,
    seed+1, … (with a variation strength: all the seed, subseeds subseed, subseed+1, …)

    The prompts' `<lora:…>` tags are looked up in the manager's LoRA library before anything loads.
    `hooks` let extensions act before each batch, on each model pass and on each image. `upscalers`:
    the model upscalers hires fix may use."""
    params.validate()
    job = hires.progress(job, params)  # with hires fix, both passes count
    hooks = hooks or NoHooks()
    loras = manager.loras
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    lora_requests = _lora_requests(params, loras)
    loaded = manager.get(params.sd_model_checkpoint)
    if hires.enabled(params):
        hires.check(params, manager, loaded, upscalers)
    # the other checkpoints of the run, loaded now (a bad one fails before any image), then the first
    # pass's is current again; all stay in the cache as it allows (engine.checkpoints.manager)
    hires_loaded, hires_title = hires.load_checkpoint(params, manager, loaded)
    refiner_model = refiner.load(params, manager, loaded)
    refiner_notes = refiner.notes(params, refiner_model)
    manager.use(loaded)
    task = make_task(params, loaded)  # input images are checked and encoded before LoRAs are applied
    control = _control_plan(params, manager, loaded, task)  # ControlNet models and maps; None without units
    applied = loras.apply(loaded.pipe, lora_requests) if loras else AppliedLoras()
    if loras and hires_loaded is not None:  # A1111 activates the LoRAs again for the second pass
        applied = dataclasses.replace(
            applied, warnings=(*applied.warnings, *loras.apply(hires_loaded.pipe, lora_requests).warnings)
        )
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
    subseed = resolve_seed(params.subseed)  # reported (all_subseeds) even when unused, as A1111
    params = task.params.replace(
        seed=resolve_seed(params.seed),
        subseed=subseed if params.subseed_strength else params.subseed,
        sampler_name=choice.sampler_name,
        scheduler=choice.scheduler,
    )
    noise_options = noise_options or noise.NoiseOptions()
    eta = noise.sampler_eta(choice.sampler_name, params.eta, noise_options)
    all_seeds, all_subseeds = noise.run_seeds(params, subseed)

    lora_hashes = applied.infotext_hashes()
    extra = {
        **task.infotext_fields,
        **(control.infotext_entries() if control else {}),
        **noise.infotext_entries(choice.sampler_name, eta, noise_options),
    }
    images: list[Image.Image] = []
    texts: list[str] = []
    seeds: list[int] = []
    subseeds: list[int] = []
    params = refiner.with_title(hires.with_checkpoint_title(params, hires_title), refiner_model)
    context = RunContext(manager, loaded, task, choice, job, embeddings, hooks, control, noise_options, eta)
    context = dataclasses.replace(
        context, upscalers=upscalers, hires_checkpoint=hires_loaded, refiner=refiner_model
    )
    job.set_batches(params.n_iter)
    for batch in range(params.n_iter):
        if batch:
            job.next_batch()
        if job.interrupted:
            break
        batch_seeds = all_seeds[batch * params.batch_size : (batch + 1) * params.batch_size]
        batch_subseeds = all_subseeds[batch * params.batch_size : (batch + 1) * params.batch_size]
        batch_params = hooks.before_batch(params, batch, batch_seeds)
        try:
            # "Tiling" put back, and the checkpoint current again (a refiner may end the batch), on errors too
            with circular_padding(loaded.pipe, batch_params.tiling), manager.kept_current(loaded):
                batch_images, batch_used = _run_batch(context, batch_params, batch_seeds, batch_subseeds)
        except EncodingStopped:  # Interrupt or Skip while the prompts were encoded: no image
            continue
        used += [name for name in batch_used if name not in used]
        # Each image's infotext is final once its batch is: the embeddings used so far are all it used.
        ti_hashes = manager.embeddings.infotext_hashes(used)
        finished = []
        for image, seed, subseed in zip(batch_images, batch_seeds, batch_subseeds):
            image, for_infotext = hooks.after_image(batch_params, image, seed)
            text = build_infotext(
                for_infotext.replace(subseed=subseed), seed, model, ti_hashes, lora_hashes, extra
            )
            finished.append((image, text, seed))
        if not finished:
            continue
        images += [image for image, _, _ in finished]
        texts += [text for _, text, _ in finished]
        seeds += batch_seeds[: len(finished)]
        subseeds += batch_subseeds[: len(finished)]
        hooks.batch_done(FinishedBatch(*(tuple(column) for column in zip(*finished))))
    return Result(
        params=params,
        images=tuple(images),
        infotexts=tuple(texts),
        seeds=tuple(seeds),
        subseeds=tuple(subseeds),
        interrupted=job.interrupted,
        warnings=(*applied.warnings, *task.warnings, *refiner_notes),
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


@dataclass(frozen=True)
class RunContext:
    """What every batch of one run shares."""

    manager: ModelManager
    loaded: LoadedCheckpoint
    task: Task
    choice: samplers.SamplerChoice
    job: StepReporter
    embeddings: conditioning.TextualInversions
    hooks: RunHooks
    control: controlnet.ControlPlan | None  # None without enabled ControlNet units
    noise_options: noise.NoiseOptions
    eta: noise.Eta
    upscalers: UpscalerCatalog | None = None  # hires fix's model upscalers
    hires_checkpoint: LoadedCheckpoint | None = None  # hr_checkpoint_name's, when not the first pass's
    refiner: refiner.Refiner | None = None


def _run_batch(
    run: RunContext, params: GenerationParams, seeds: list[int], subseeds: list[int]
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """The batch's images and the textual-inversion embeddings its prompts used."""
    loaded, task, job, manager = run.loaded, run.task, run.job, run.manager
    pipe = task.pipe
    if hires_upscale.wanted(params):  # ✨ Upscale: an image made before stands for the first pass
        return hires_upscale.second_pass_only(run, params, _run_batch, seeds, subseeds)
    # A fresh scheduler each batch: schedulers keep per-run state. DPM++ SDE takes its seeds here: one
    # Brownian tree per image (as A1111), so an image does not depend on the batch it was made in.
    sdxl = loaded.architecture.family == "sdxl"  # Align Your Steps has a table for SDXL
    pipe.scheduler = make_scheduler(run.choice, pipe.scheduler.config, seed=seeds, sdxl=sdxl)
    factor = pipe.vae_scale_factor
    shape = (pipe.vae.config.latent_channels, params.height // factor, params.width // factor)
    rng = noise.batch_rng(params, shape, seeds, subseeds, run.noise_options)
    initial = rng.first()
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    with torch.inference_mode(), stoppable(pipe, lambda: job.interrupted or job.skipped):
        text = PromptConditioning(loaded, params, len(seeds), run.embeddings)

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
        initial = initial.to(pipe.device, latents_dtype)
        inputs = task.inputs(initial, generators, seeds)
        inputs.setdefault("num_inference_steps", params.steps)  # hires fix's schedule is longer
        if run.eta.value is not None:
            inputs["eta"] = run.eta.value  # the pipelines hand it to schedulers whose step takes it (DDIM)
        count = len(seeds)
        # one registry, ordered by each hook's Stage (engine.sampling.hooks), not by installation order
        unet_hooks = ModelHooks(
            [
                run.hooks.cfg_denoiser(pipe, params, count),
                cfg_rescale.hook(params.cfg_scale, params.cfg_rescale, count),
                run.control.hook(pipe, count) if run.control else None,
                text.guidance_hook(),
            ]
        )
        switch = refiner.switch_for(run.refiner, manager, loaded, params, count, task.steps_run)
        with (
            autocast,
            unet_hooks.installed(pipe.unet),
            refiner.routed(switch, pipe),
            noise.drawn_from(rng, initial, pipe, run.eta.value),
        ):
            output = pipe(
                **text.kwargs(0),
                **inputs,
                guidance_scale=params.cfg_scale,
                callback_on_step_end=on_step_end,
                callback_on_step_end_tensor_inputs=[*text.tensor_inputs(), "latents"],
                output_type="latent",  # decoded here: tiling, NaN retry (engine.checkpoints.memory)
            )
        if hires.enabled(params):  # the second pass, from the first pass's latents
            hires_params = run.hooks.before_hires(params)
            images, used = hires.second_pass(run, hires_params, output.images, _run_batch, seeds, subseeds)
            return images, tuple(dict.fromkeys(text.embeddings_used + used))
        # the checkpoint's own pipeline decodes: with --medvram its offload hooks put the VAE back
        decoder = refiner.decoder(switch, loaded.pipe)  # the refiner's after a switch, as A1111
        latents = run.hooks.after_sampling(params, output.images)
        images = memory.decode_latents(decoder, latents, manager.vae_tiling_threshold)
    return task.finish(images), text.embeddings_used


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
        extra={**(extra or {}), "Lora hashes": lora_hashes, "TI hashes": ti_hashes},
        version=INFOTEXT_VERSION,
    )
