"""The upscalers of A1111's Extras tab and hires fix: the plain resizers ("None", "Lanczos", "Nearest",
Pillow only) and the model upscalers found by webui.engine.upscaling's catalog, in one listing.

Sizes follow A1111's upscaler rule: the target is image size × scale rounded down to a multiple of 8;
"Scale to" picks the scale that covers width × height and, with crop, centres the result on a canvas of
exactly that size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from PIL import Image

from webui.core import image_limits
from webui.core.errors import InvalidParameter

if TYPE_CHECKING:  # torch and spandrel load only when a model upscaler is used
    import torch

    from webui.engine.upscaling.catalog import UpscalerCatalog
    from webui.engine.upscaling.runner import TileSettings

NONE = "None"
_FILTERS = MappingProxyType({"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST})
UPSCALERS = (NONE, *_FILTERS)
# A1111's latent upscale modes for hires fix: name → torch interpolate mode and antialias.
LATENT_UPSCALE_MODES: Mapping[str, tuple[str, bool]] = MappingProxyType(
    {
        "Latent": ("bilinear", False),
        "Latent (antialiased)": ("bilinear", True),
        "Latent (bicubic)": ("bicubic", False),
        "Latent (bicubic antialiased)": ("bicubic", True),
        "Latent (nearest)": ("nearest", False),
        "Latent (nearest-exact)": ("nearest-exact", False),
    }
)
MAX_SIDE = 8192  # larger results would take gigabytes; A1111 has no model here that could make them either
PLAIN_SCALE = 4  # what A1111's /sdapi/v1/upscalers reports for the resizers without a model


@dataclass(frozen=True)
class UpscalerInfo:
    """One entry of A1111's `/sdapi/v1/upscalers`: model_name is the model's architecture (None for the
    plain resizers), model_path its file, scale its native factor."""

    name: str
    model_name: str | None = None
    model_path: str | None = None
    model_url: str | None = None
    scale: float = PLAIN_SCALE


@dataclass(frozen=True)
class ModelUpscaling:
    """What running a model upscaler needs beyond the image: the catalog, A1111's tile options
    (`ESRGAN_tile`, `ESRGAN_tile_overlap`; None: 192 and 8), the device and fp16 wish, and the job's
    progress/interrupt hooks."""

    catalog: UpscalerCatalog
    tiles: TileSettings | None = None
    device: torch.device | None = None
    half: bool = False
    on_progress: Callable[[int, int], None] | None = field(default=None, compare=False)
    should_stop: Callable[[], bool] | None = field(default=None, compare=False)


def list_upscalers(models: UpscalerCatalog | None = None) -> list[UpscalerInfo]:
    """The plain resizers, then every model upscaler file the catalog recognises."""
    listing = [UpscalerInfo(name) for name in UPSCALERS]
    if models is not None:
        listing += [UpscalerInfo(m.name, m.architecture, str(m.path), None, m.scale) for m in models.scan()]
    return listing


def upscaler_names(models: UpscalerCatalog | None = None) -> list[str]:
    return [info.name for info in list_upscalers(models)]


@dataclass(frozen=True)
class ExtrasResize:
    """One Extras "Upscale" request: resize_mode 0 scales by `scale`, 1 scales to `width` × `height`."""

    resize_mode: int = 0
    scale: float = 2.0
    width: int = 512
    height: int = 512
    crop: bool = True
    upscaler_1: str = NONE
    upscaler_2: str = NONE
    upscaler_2_visibility: float = 0.0

    def validate(self, names: Collection[str] = UPSCALERS) -> None:
        """Checks the fields; `names` are the upscalers that exist (upscaler_names())."""
        for name in ("upscaler_1", "upscaler_2"):
            if getattr(self, name) not in names:
                raise InvalidParameter(
                    f"{name}: unknown upscaler {getattr(self, name)!r}; valid: {', '.join(names)}"
                )
        if self.resize_mode not in (0, 1):
            raise InvalidParameter(
                f"resize_mode must be 0 (scale by) or 1 (scale to), got {self.resize_mode}"
            )
        if self.resize_mode == 0 and not self.scale > 0:
            raise InvalidParameter(f"upscaling_resize must be above 0, got {self.scale}")
        if self.resize_mode == 1 and not (0 < self.width <= MAX_SIDE and 0 < self.height <= MAX_SIDE):
            raise InvalidParameter(
                f"upscaling_resize_w/h must be between 1 and {MAX_SIDE}, got {self.width}x{self.height}"
            )
        if not 0 <= self.upscaler_2_visibility <= 1:
            raise InvalidParameter(
                f"extras_upscaler_2_visibility must be between 0 and 1, got {self.upscaler_2_visibility}"
            )


def upscale(
    image: Image.Image, upscaler: str, scale: float, models: ModelUpscaling | None = None
) -> Image.Image:
    """`image` resized by `scale` with the named filter or model upscaler, to A1111's size (rounded down to
    a multiple of 8). Model upscalers need `models`."""
    # finite before the products are turned into ints (Infinity or NaN: a 4xx, not a 500); MAX_SIDE below
    # is within image_limits' bounds
    if not (math.isfinite(image.width * scale) and math.isfinite(image.height * scale)):
        image_limits.check_size(image.width * scale, image.height * scale, f"the size upscaled by {scale:g}")
    size = (int(image.width * scale) // 8 * 8, int(image.height * scale) // 8 * 8)
    if not (0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE):
        raise InvalidParameter(
            f"upscaling {image.width}x{image.height} by {scale:g} gives {size[0]}x{size[1]}; "
            f"each side must be between 8 and {MAX_SIDE}"
        )
    if upscaler in _FILTERS:
        return image.resize(size, resample=_FILTERS[upscaler])
    if upscaler == NONE:
        return image
    if models is None:
        raise InvalidParameter(f"unknown upscaler {upscaler!r}; valid: {', '.join(UPSCALERS)}")
    extra = {} if models.tiles is None else {"settings": models.tiles}
    return models.catalog.upscale(
        upscaler,
        image,
        scale,
        **extra,
        device=models.device,
        half=models.half,
        on_progress=models.on_progress,
        should_stop=models.should_stop,
    )


def run_extras(
    image: Image.Image, request: ExtrasResize, models: ModelUpscaling | None = None
) -> tuple[Image.Image, dict[str, str]]:
    """The resized image and its "Postprocess …" infotext entries; "None" as the first upscaler leaves the
    image as it is (A1111). Model upscalers need `models`."""
    request.validate(upscaler_names(models.catalog if models else None))
    if request.upscaler_1 == NONE:
        return image, {}
    info: dict[str, str] = {}
    if request.resize_mode == 1:
        scale = max(request.width / image.width, request.height / image.height)
        info["Postprocess upscale to"] = f"{request.width}x{request.height}"
    else:
        scale = request.scale
        info["Postprocess upscale by"] = f"{scale:g}"
    result = upscale(image, request.upscaler_1, scale, models)
    info["Postprocess upscaler"] = request.upscaler_1
    if request.upscaler_2 != NONE and request.upscaler_2_visibility > 0:
        second = upscale(image, request.upscaler_2, scale, models)
        result = Image.blend(result.convert("RGB"), second.convert("RGB"), request.upscaler_2_visibility)
        info["Postprocess upscaler 2"] = request.upscaler_2
    if request.resize_mode == 1 and request.crop:
        canvas = Image.new(result.mode, (request.width, request.height))
        canvas.paste(result, ((request.width - result.width) // 2, (request.height - result.height) // 2))
        result = canvas
        info["Postprocess crop to"] = f"{result.width}x{result.height}"
    return result, info
