"""img2img and inpaint runs: which pipeline, what it is given, and how its results are finished.

Ordinary checkpoints run diffusers' img2img pipeline, or with a mask its inpaint pipeline, which keeps the
unmasked latents by blending the (re-noised) input back in after every step. Inpainting checkpoints
(9-channel UNet) run their inpaint pipeline for everything, the mask and the masked image's latents being
extra UNet input; without a mask (img2img, txt2img) that is a full mask over an empty image, as A1111
conditions them. All pipelines share the checkpoint's modules (LoadedCheckpoint.pipeline).

The inputs are prepared by engine.sampling.image_prep and encoded here; the pipelines get latents. That
is where "Only masked" crops, latent upscale, latent noise / latent nothing and the masked-image
conditioning happen. Encoding takes the VAE's mean (no sampling: deterministic, independent of the batch). The
noise the pipelines draw is the batch's initial noise (engine.sampling.noise): the noise txt2img starts
from, so the seeds, variation seeds and noise source mean the same in both. "latent noise" fills the
masked latents with that noise too (A1111 uses the seeds' noise without the variation seed there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
)
from PIL import Image

from webui.core import infotext
from webui.core.params import MASKED_CONTENT, GenerationParams, Img2Img
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.sampling import image_prep

PIPELINES = {  # (SDXL?, inpaint?) -> the pipeline class
    (False, False): StableDiffusionImg2ImgPipeline,
    (False, True): StableDiffusionInpaintPipeline,
    (True, False): StableDiffusionXLImg2ImgPipeline,
    (True, True): StableDiffusionXLInpaintPipeline,
}
LATENT_NOISE = MASKED_CONTENT.index("latent noise")
LATENT_NOTHING = MASKED_CONTENT.index("latent nothing")
CONDITIONAL_MASK_WEIGHT = 1.0  # A1111's default "inpainting_mask_weight" (fixed here)


def steps_and_strength(steps: int, strength: float) -> tuple[int, float]:
    """The sampler steps img2img runs (diffusers, as A1111: int(steps × strength)) and the strength to
    ask the pipeline for. A strength too low for one step gets one step at the lowest noise level, as in
    A1111, instead of diffusers' error."""
    run = min(int(steps * strength), steps)
    if run >= 1:
        return run, strength
    return 1, min(1.0, 1.5 / steps)  # int(steps × 1.5 / steps) is 1 whatever the float rounding


class Img2ImgTask:
    """One img2img / inpaint run (see engine.sampling.generate.Task). `params` is Img2Img, or
    GenerationParams for an inpainting checkpoint: an empty image, fully masked, at strength 1 (the seed
    noise alone)."""

    def __init__(self, params: GenerationParams, loaded: LoadedCheckpoint) -> None:
        source = params if isinstance(params, Img2Img) else _blank_img2img(params)
        prepared = image_prep.prepare(source, loaded.pipe.vae_scale_factor)
        self.prepared = prepared
        self.params = params
        if isinstance(params, Img2Img):
            only_masked = params.inpaint_full_res and prepared.only_masked
            count = image_prep.batch_size_for(params)
            self.params = params.replace(batch_size=count, inpaint_full_res=only_masked)
        self.conditioned = loaded.architecture.inpainting  # mask + masked image go into the UNet
        inpaint = self.conditioned or prepared.mask is not None
        self.pipe = loaded.pipeline(PIPELINES[loaded.architecture.family == "sdxl", inpaint])
        self.steps_run, self.strength = steps_and_strength(source.steps, source.denoising_strength)
        self.warnings = prepared.warnings
        self.infotext_fields: Mapping[str, infotext.Value] = (
            {"Conditional mask weight": CONDITIONAL_MASK_WEIGHT} if self.conditioned else {}
        )
        self.size = (source.width, source.height)
        factor = self.pipe.vae_scale_factor
        latent_size = (source.width // factor, source.height // factor)
        # the sampler's mask; inpainting checkpoints without one repaint everything
        mask = prepared.mask
        if mask is None and self.conditioned:
            mask = Image.new("L", self.size, 255)
        self.mask = mask
        self.latents = encode_images(self.pipe, prepared.images, latent_size)
        self.masked_latents: torch.Tensor | None = None
        if self.conditioned:
            self.masked_latents = encode_images(self.pipe, prepared.images, latent_size, masked_by=mask)
        self.fill = source.inpainting_fill
        self.replaced: torch.Tensor | None = None  # where latent noise / latent nothing replace the input
        if prepared.mask is not None and self.fill in (LATENT_NOISE, LATENT_NOTHING):
            rounded = image_prep.latent_mask(prepared.mask, latent_size)
            self.replaced = torch.from_numpy(rounded)[None, None]

    def inputs(
        self, noise: torch.Tensor, generators: list[torch.Generator], seeds: list[int]
    ) -> dict[str, Any]:
        count = len(seeds)
        latents = _cycled(self.latents, count).to(noise)
        if self.replaced is not None:
            replacement = noise if self.fill == LATENT_NOISE else torch.zeros_like(noise)
            replaced = self.replaced.to(noise)
            latents = latents * (1 - replaced) + replacement * replaced
        kwargs: dict[str, Any] = {
            "image": latents,
            "strength": self.strength,
            # the pipeline's draws are `noise` (engine.sampling.noise); these only stand behind them
            "generator": [torch.Generator("cpu").manual_seed(seed) for seed in seeds],
        }
        if self.mask is not None:
            masked = self.masked_latents
            kwargs |= {
                "mask_image": self.mask,
                # 4-channel UNets ignore it; without it the pipeline would mask `image` as if it were pixels
                "masked_image_latents": latents if masked is None else _cycled(masked, count).to(noise),
                "width": self.size[0],
                "height": self.size[1],
            }
        return kwargs

    def finish(self, images: list[Image.Image]) -> list[Image.Image]:
        return [self.prepared.finish(index, image) for index, image in enumerate(images)]


def _blank_img2img(params: GenerationParams) -> Img2Img:
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(GenerationParams)}
    blank = Image.new("RGB", (params.width, params.height), (127, 127, 127))
    return Img2Img(**fields, init_images=(blank,), denoising_strength=1.0)


def _cycled(latents: torch.Tensor, count: int) -> torch.Tensor:
    """One row per image of the batch: one input serves all, several are one each."""
    return latents[[index % latents.shape[0] for index in range(count)]]


def encode_images(
    pipe: Any, images: Sequence[Image.Image], size: tuple[int, int], masked_by: Image.Image | None = None
) -> torch.Tensor:
    """RGB images → latents as the pipelines scale them, at latent `size` (width, height): bilinearly
    resized when an image was encoded at another size (latent upscale).

    `masked_by`: the inpainting UNet's image input instead, the images with their masked part (mask at
    least half) set to 0 in the VAE's [-1, 1] (mid-grey), as A1111 and diffusers build it."""
    latents = []
    for image in images:
        pixels = pipe.image_processor.preprocess(image)  # [0, 255] → [-1, 1], (1, 3, H, W)
        if masked_by is not None:
            keep = np.asarray(masked_by.resize(image.size, Image.Resampling.BILINEAR)) < 128
            pixels = pixels * torch.from_numpy(keep).to(pixels)
        latents.append(_encode(pipe.vae, pixels.to(pipe._execution_device)))
    result = torch.cat(latents)
    width, height = size
    if result.shape[-2:] != (height, width):
        result = torch.nn.functional.interpolate(result, size=(height, width), mode="bilinear")
    return result


def _encode(vae: AutoencoderKL, pixels: torch.Tensor) -> torch.Tensor:
    latents = vae.encode(pixels.to(vae.dtype)).latent_dist.mode()
    if not torch.isfinite(latents).all() and vae.dtype != torch.float32:
        with _float32(vae):  # a half-precision VAE overflowed (SDXL's does): encode again in float32
            latents = vae.encode(pixels.float()).latent_dist.mode()
    config = vae.config
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    latents = latents.float()
    if mean is not None and std is not None:
        mean = torch.tensor(mean).view(1, -1, 1, 1).to(latents)
        std = torch.tensor(std).view(1, -1, 1, 1).to(latents)
        return (latents - mean) * config.scaling_factor / std
    return latents * config.scaling_factor


@contextmanager
def _float32(vae: AutoencoderKL) -> Iterator[None]:
    dtype = vae.dtype
    vae.to(dtype=torch.float32)
    try:
        yield
    finally:
        vae.to(dtype=dtype)
