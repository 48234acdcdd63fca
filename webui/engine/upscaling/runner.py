"""Upscale a PIL image with a loaded spandrel model to any scale.

As A1111: the target size is image size × scale rounded down to a multiple of 8; the model runs at its
native scale up to three times until the image covers the target (at least once, also at scale 1, so 1x
restoration models apply), then Lanczos resizes to the exact target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy
import torch
from PIL import Image

from webui.core.errors import InvalidParameter
from webui.engine.upscaling.tiling import run_tiled, tile_count

# A spandrel ImageModelDescriptor (spandrel ships no type information and is imported lazily).
SpandrelModel = Any

MAX_PASSES = 3


@dataclass(frozen=True)
class TileSettings:
    """A1111's options `ESRGAN_tile` (tile side in input pixels, 0 = no tiling) and `ESRGAN_tile_overlap`."""

    tile: int = 192
    overlap: int = 8


DEFAULT_TILES = TileSettings()


def target_size(width: int, height: int, scale: float) -> tuple[int, int]:
    return int(width * scale) // 8 * 8, int(height * scale) // 8 * 8


def planned_passes(width: int, height: int, scale: float, native: int) -> list[tuple[int, int]]:
    """The input sizes of the model passes A1111's loop makes for this request."""
    goal_w, goal_h = target_size(width, height, scale)
    sizes: list[tuple[int, int]] = []
    for index in range(MAX_PASSES):
        if width >= goal_w and height >= goal_h and (index > 0 or scale != 1):
            break
        sizes.append((width, height))
        if native == 1:  # a 1x model never grows the image: one pass (A1111 stops when the size is unchanged)
            break
        width, height = width * native, height * native
    return sizes


def to_tensor(image: Image.Image, channels: int) -> torch.Tensor:
    """PIL → (1, C, H, W) float32 in [0, 1], RGB (or grey for one-channel models), as spandrel expects."""
    array = numpy.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=numpy.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_image(tensor: torch.Tensor) -> Image.Image:
    array = tensor.squeeze(0).float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array[:, :, :3])


def prepare(descriptor: SpandrelModel, device: torch.device, half: bool) -> torch.dtype:
    """Moves the model to `device` in fp16 when asked and the architecture supports it, else fp32;
    returns the dtype chosen."""
    dtype = torch.float16 if half and device.type == "cuda" and descriptor.supports_half else torch.float32
    descriptor.to(device=device, dtype=dtype)
    return dtype


def upscale_image(
    descriptor: SpandrelModel,
    image: Image.Image,
    scale: float,
    settings: TileSettings = DEFAULT_TILES,
    *,
    device: torch.device | None = None,
    half: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Image.Image:
    """`image` upscaled by `scale` with the spandrel model `descriptor`. `on_progress(done, total)` counts
    tiles over all passes; `should_stop` is asked before each tile (Interrupted when True)."""
    goal = target_size(image.width, image.height, scale)
    if goal[0] <= 0 or goal[1] <= 0:
        raise InvalidParameter(f"upscaling {image.width}x{image.height} by {scale:g} leaves no pixels")
    native: int = descriptor.scale
    passes = planned_passes(image.width, image.height, scale, native)
    model_tiling = descriptor.tiling.name
    tile = 0 if model_tiling == "INTERNAL" else settings.tile
    total = sum(tile_count(h, w, tile, settings.overlap) for w, h in passes)
    done = 0

    def tile_done() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    dtype = prepare(descriptor, device or torch.device("cpu"), half)
    channels: int = descriptor.input_channels
    with torch.inference_mode():
        for _ in passes:
            tensor = to_tensor(image, channels).to(device=device or "cpu", dtype=dtype)
            output = run_tiled(descriptor, tensor, native, tile, settings.overlap, tile_done, should_stop)
            image = to_image(output)
    if image.size != goal:
        image = image.resize(goal, resample=Image.Resampling.LANCZOS)
    return image
