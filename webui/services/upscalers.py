"""The plain resizers of A1111's Extras tab ("None", "Lanczos", "Nearest"): no model, only Pillow.

Sizes follow A1111's upscaler rule: the target is image size × scale rounded down to a multiple of 8;
"Scale to" picks the scale that covers width × height and, with crop, centres the result on a canvas of
exactly that size.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from PIL import Image

from webui.core.errors import InvalidParameter

NONE = "None"
_FILTERS = MappingProxyType({"Lanczos": Image.Resampling.LANCZOS, "Nearest": Image.Resampling.NEAREST})
UPSCALERS = (NONE, *_FILTERS)
MAX_SIDE = 8192  # larger results would take gigabytes; A1111 has no model here that could make them either


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

    def validate(self) -> None:
        for name in ("upscaler_1", "upscaler_2"):
            if getattr(self, name) not in UPSCALERS:
                raise InvalidParameter(
                    f"{name}: unknown upscaler {getattr(self, name)!r}; valid: {', '.join(UPSCALERS)}"
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


def upscale(image: Image.Image, upscaler: str, scale: float) -> Image.Image:
    """`image` resized by `scale` with the named filter, to A1111's size (rounded down to a multiple of 8)."""
    size = (int(image.width * scale) // 8 * 8, int(image.height * scale) // 8 * 8)
    if not (0 < size[0] <= MAX_SIDE and 0 < size[1] <= MAX_SIDE):
        raise InvalidParameter(
            f"upscaling {image.width}x{image.height} by {scale:g} gives {size[0]}x{size[1]}; "
            f"each side must be between 8 and {MAX_SIDE}"
        )
    return image.resize(size, resample=_FILTERS[upscaler])


def run_extras(image: Image.Image, request: ExtrasResize) -> tuple[Image.Image, dict[str, str]]:
    """The resized image and its "Postprocess …" infotext entries; "None" as the first upscaler leaves the
    image as it is (A1111)."""
    request.validate()
    if request.upscaler_1 == NONE:
        return image, {}
    info: dict[str, str] = {}
    if request.resize_mode == 1:
        scale = max(request.width / image.width, request.height / image.height)
        info["Postprocess upscale to"] = f"{request.width}x{request.height}"
    else:
        scale = request.scale
        info["Postprocess upscale by"] = f"{scale:g}"
    result = upscale(image, request.upscaler_1, scale)
    info["Postprocess upscaler"] = request.upscaler_1
    if request.upscaler_2 != NONE and request.upscaler_2_visibility > 0:
        second = upscale(image, request.upscaler_2, scale)
        result = Image.blend(result.convert("RGB"), second.convert("RGB"), request.upscaler_2_visibility)
        info["Postprocess upscaler 2"] = request.upscaler_2
    if request.resize_mode == 1 and request.crop:
        canvas = Image.new(result.mode, (request.width, request.height))
        canvas.paste(result, ((request.width - result.width) // 2, (request.height - result.height) // 2))
        result = canvas
        info["Postprocess crop to"] = f"{result.width}x{result.height}"
    return result, info
