"""Hires fix's sizes, as A1111 computes them (its `calculate_target_resolution`): the UI's preview line and
the engine's second pass (engine.sampling.hires) use the same numbers."""

from __future__ import annotations

from dataclasses import dataclass

from webui.core.params import Txt2Img


@dataclass(frozen=True)
class HiresSize:
    """The second pass's size: the first pass upscaled to `width` × `height`, then `crop_x` / `crop_y`
    latent columns / rows cut off (split between both sides) when both resize sides were given and the
    aspect ratios differ."""

    width: int
    height: int
    crop_x: int = 0
    crop_y: int = 0


def target_size(params: Txt2Img, latent_factor: int = 8) -> HiresSize:
    """First pass × hr_scale, or resized to hr_resize_x × hr_resize_y: one side 0 keeps the aspect ratio;
    both set, the image is scaled to cover that size and the overflow is cropped in latent space."""
    width, height = params.width, params.height
    to_x, to_y = params.hr_resize_x, params.hr_resize_y
    if not to_x and not to_y:
        return HiresSize(int(width * params.hr_scale), int(height * params.hr_scale))
    if not to_y:
        return HiresSize(to_x, to_x * height // width)
    if not to_x:
        return HiresSize(to_y * width // height, to_y)
    if width / height < to_x / to_y:
        size = HiresSize(to_x, to_x * height // width)
    else:
        size = HiresSize(to_y * width // height, to_y)
    crop_x = (size.width - to_x) // latent_factor
    crop_y = (size.height - to_y) // latent_factor
    return HiresSize(size.width, size.height, crop_x, crop_y)


def preview_text(params: Txt2Img) -> str:
    """A1111's line under the hires controls: "from 512x512 to 1024x1024" (the resize size when given)."""
    size = target_size(params)
    width = params.hr_resize_x or size.width
    height = params.hr_resize_y or size.height
    return f"from {params.width}x{params.height} to {width}x{height}"


def second_pass_steps(params: Txt2Img) -> int:
    """The steps the second pass runs: hr_second_pass_steps, 0 meaning the first pass's steps."""
    return params.hr_second_pass_steps or params.steps
