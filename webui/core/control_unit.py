"""One ControlNet unit of a generation, with sd-webui-controlnet's API field names and choices."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from PIL import Image

from webui.core import image_limits
from webui.core.errors import InvalidParameter

# The preprocessor-resolution slider's range (the generation size's range: 64 to 2048).
PROCESSOR_RES_RANGE = (64, 2048)

# sd-webui-controlnet's choices, in the order of their API integers.
CONTROL_MODES = ("Balanced", "My prompt is more important", "ControlNet is more important")
CONTROL_RESIZE_MODES = ("Just Resize", "Crop and Resize", "Resize and Fill")
_CONTROL_RESIZE_ALIASES = {  # older sd-webui-controlnet labels its API still accepts
    "Inner Fit (Scale to Fit)": "Crop and Resize",
    "Scale to Fit (Inner Fit)": "Crop and Resize",
    "Outer Fit (Shrink to Fit)": "Resize and Fill",
    "Envelope (Outer Fit)": "Resize and Fill",
}


def _choice(
    name: str, value: str | int, choices: tuple[str, ...], aliases: dict[str, str] | None = None
) -> str:
    """A label from a label, an alias or the label's API integer."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(choices):
        return choices[value]
    if isinstance(value, str):
        label = (aliases or {}).get(value, value)
        if label in choices:
            return label
    raise InvalidParameter(
        f"{name} must be one of {', '.join(choices)} (or 0-{len(choices) - 1}), got {value!r}"
    )


def control_mode_name(value: str | int) -> str:
    return _choice("control_mode", value, CONTROL_MODES)


def control_resize_mode_name(value: str | int) -> str:
    # 3 is img2img's "Just resize (latent upscale)", which sd-webui-controlnet treats as Just Resize
    return _choice("resize_mode", 0 if value == 3 else value, CONTROL_RESIZE_MODES, _CONTROL_RESIZE_ALIASES)


@dataclass(frozen=True)
class ControlUnit:
    """One ControlNet unit, with sd-webui-controlnet's API field names.

    `processor_res`, `threshold_a` and `threshold_b` are -1 for "the preprocessor's default" (its
    slider); what they mean depends on `module` (canny: low/high threshold). `image` is the control
    image (a ready map with module "none"); with `use_img2img_input` the img2img input is used instead."""

    enabled: bool = True
    module: str = "none"
    model: str = "None"
    weight: float = 1.0
    image: Image.Image | None = None
    use_img2img_input: bool = False
    resize_mode: str = "Crop and Resize"
    processor_res: int = -1
    threshold_a: float = -1
    threshold_b: float = -1
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    pixel_perfect: bool = False
    control_mode: str = "Balanced"

    def validate(self, index: int, has_img2img_input: bool) -> None:
        """Raise InvalidParameter naming the unit and the field that is wrong (enabled units only)."""
        if not self.enabled:
            return
        where = f"ControlNet unit {index}"
        if not self.model or self.model == "None":
            raise InvalidParameter(f"{where}: choose a ControlNet model (model is {self.model!r})")
        if self.image is None and not (self.use_img2img_input and has_img2img_input):
            fallback = (
                " (it would use the img2img input, but there is none)" if self.use_img2img_input else ""
            )
            raise InvalidParameter(f"{where} needs an image{fallback}")
        try:
            _check_range("weight", self.weight, 0.0, 2.0)
            _check_range("guidance_start", self.guidance_start, 0.0, 1.0)
            _check_range("guidance_end", self.guidance_end, 0.0, 1.0)
            if self.processor_res != -1:
                _check_range("processor_res", self.processor_res, *PROCESSOR_RES_RANGE)
                if self.image is not None:  # a 64x1 image at 2048 would be 131072x2048: refused now
                    image_limits.scaled_to_short_side(self.image.size, self.processor_res, "processing size")
            control_mode_name(self.control_mode)
            control_resize_mode_name(self.resize_mode)
        except InvalidParameter as error:
            raise InvalidParameter(f"{where}: {error}") from None
        if self.guidance_start >= self.guidance_end:
            raise InvalidParameter(
                f"{where}: guidance_start ({self.guidance_start}) must be below guidance_end "
                f"({self.guidance_end})"
            )

    def replace(self, **changes: Any) -> "ControlUnit":
        return dataclasses.replace(self, **changes)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, got {value}")
