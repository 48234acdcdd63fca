"""The ✨ Upscale button (A1111 1.8's txt2img_upscale): hires fix's second pass on one image made before,
which stands for the first pass (`Txt2Img.firstpass_image`); the first pass is not run.

The image is encoded by the checkpoint's VAE and goes on as the first pass's latents would
(engine.sampling.hires): latent modes upscale those latents, the other upscalers the pixels decoded from
them. The second pass draws its noise from the params' seeds, as in a full hires-fix run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from webui.core.errors import InvalidParameter
from webui.core.params import Txt2Img
from webui.engine.sampling import hires, img2img

if TYPE_CHECKING:
    from webui.engine.sampling.generate import RunContext


def wanted(params: Any) -> bool:
    return hires.enabled(params) and params.firstpass_image is not None


def first_pass_latents(pipe: Any, image: Image.Image, width: int, height: int) -> torch.Tensor:
    """The image's latents at the first pass's size (width × height pixels)."""
    if image.size != (width, height):
        raise InvalidParameter(
            f"the image to upscale is {image.width}x{image.height}, the first pass {width}x{height}"
        )
    factor = pipe.vae_scale_factor
    with torch.inference_mode():
        return img2img.encode_images(pipe, [image.convert("RGB")], (width // factor, height // factor))


def second_pass_only(
    run: RunContext, params: Any, run_batch: hires.RunBatch, seeds: list[int], subseeds: list[int]
) -> tuple[list[Image.Image], tuple[str, ...]]:
    """The batch's (one) image: the hires pass of `params.firstpass_image`."""
    if not isinstance(params, Txt2Img) or params.firstpass_image is None or len(seeds) != 1:
        raise InvalidParameter("✨ Upscale takes one image, in a batch of one")
    latents = first_pass_latents(run.loaded.pipe, params.firstpass_image, params.width, params.height)
    return hires.second_pass(run, params, latents, run_batch, seeds, subseeds)
