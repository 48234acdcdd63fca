"""One generation run: params in, images and their infotexts out. Knows models, not users."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image

from webui import __version__
from webui.core import infotext, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import Result, Txt2Img
from webui.engine.loader import LoadedCheckpoint
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
    """txt2img: n_iter batches of batch_size images, seeds seed, seed+1, …"""
    params.validate()
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    loaded = manager.get(params.sd_model_checkpoint)
    entry = manager.entry_for(loaded)
    model = ModelInfo(name=entry.model_name, short_hash=manager.short_hash(loaded))
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
        images += _run_batch(params, loaded, choice, batch_seeds, job)
        seeds += batch_seeds
    texts = tuple(build_infotext(params, seed, model) for seed in seeds)
    return Result(params=params, images=tuple(images), infotexts=texts, seeds=tuple(seeds), interrupted=job.interrupted)


def _run_batch(
    params: Txt2Img,
    loaded: LoadedCheckpoint,
    choice: samplers.SamplerChoice,
    seeds: list[int],
    job: StepReporter,
) -> list[Image.Image]:
    pipe = loaded.pipe
    # A fresh scheduler each batch: schedulers keep per-run state. DPM++ SDE takes its seeds here: one
    # Brownian tree per image (as A1111), so an image does not depend on the batch it was made in.
    pipe.scheduler = make_scheduler(choice, pipe.scheduler.config, seed=seeds)
    factor = pipe.vae_scale_factor
    shape = (pipe.vae.config.latent_channels, params.height // factor, params.width // factor)
    noise, generators = initial_noise(seeds, shape)

    def on_step_end(pipeline: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        job.report(index + 1, pipeline.num_timesteps)
        if job.interrupted or job.skipped:
            pipeline._interrupt = True  # diffusers' own early stop: skip the remaining steps, then decode
        return tensors

    with torch.inference_mode():
        output = pipe(
            **_prompts(loaded, params, len(seeds)),
            num_inference_steps=params.steps,
            guidance_scale=params.cfg_scale,
            width=params.width,
            height=params.height,
            latents=noise.to(pipe.device, pipe.unet.dtype),
            generator=generators,
            callback_on_step_end=on_step_end,
            output_type="pil",
        )
    return list(output.images)


def _prompts(loaded: LoadedCheckpoint, params: Txt2Img, count: int) -> dict[str, Any]:
    """The pipeline's prompt arguments: the texts, or with Clip skip on SD1 the embeddings.

    As A1111, Clip skip applies to SD1 only (SD2 and SDXL have fixed layers), and to the prompt and the
    negative prompt alike. diffusers' own `clip_skip` skips in the prompt only (and fails with transformers 5).
    """
    if loaded.architecture.family != "sd1" or params.clip_skip == 1:
        return {"prompt": [params.prompt] * count, "negative_prompt": [params.negative_prompt] * count}
    return {
        "prompt_embeds": clip_skipped_embeddings(loaded.pipe, [params.prompt] * count, params.clip_skip),
        "negative_prompt_embeds": clip_skipped_embeddings(
            loaded.pipe, [params.negative_prompt] * count, params.clip_skip
        ),
    }


def clip_skipped_embeddings(pipe: Any, texts: list[str], clip_skip: int) -> torch.Tensor:
    """CLIP's hidden states `clip_skip` layers from the end (1: the last), through its final layer norm."""
    encoder = pipe.text_encoder
    if clip_skip > encoder.config.num_hidden_layers:
        raise InvalidParameter(
            f"Clip skip {clip_skip} is more than the {encoder.config.num_hidden_layers} layers of this "
            "model's text encoder"
        )
    tokens = pipe.tokenizer(
        texts,
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    with torch.inference_mode():
        hidden = encoder(tokens.to(pipe.device), output_hidden_states=True).hidden_states[-clip_skip]
        return encoder.final_layer_norm(hidden)


def build_infotext(params: Txt2Img, seed: int, model: ModelInfo) -> str:
    return infotext.build(
        params,
        seed=seed,
        model_name=model.name,
        model_hash=model.short_hash,
        extra={"RNG": "CPU"},  # the noise comes from a CPU generator (see initial_noise)
        version=f"v{__version__}",
    )
