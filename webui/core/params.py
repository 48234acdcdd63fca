"""Generation parameters as plain, frozen data.

The same object is the API request body, the UI's output, the queue's job and the source of the
infotext. Field names follow A1111's API.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from webui.core.errors import InvalidParameter

MAX_SIDE = 2048
MIN_SIDE = 64


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
                _check_range("processor_res", self.processor_res, MIN_SIDE, MAX_SIDE)
            control_mode_name(self.control_mode)
            control_resize_mode_name(self.resize_mode)
        except InvalidParameter as error:
            raise InvalidParameter(f"{where}: {error}") from None
        if self.guidance_start >= self.guidance_end:
            raise InvalidParameter(
                f"{where}: guidance_start ({self.guidance_start}) must be below guidance_end ({self.guidance_end})"
            )

    def replace(self, **changes: Any) -> "ControlUnit":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class GenerationParams:
    """What every generation has: txt2img and img2img/inpaint both extend it."""

    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    cfg_scale: float = 7.0
    cfg_rescale: float = 0.0  # CFG Rescale φ (engine.cfg_rescale); 0 is plain CFG
    sampler_name: str = "DPM++ 2M"
    scheduler: str = "Automatic"
    seed: int = -1
    width: int = 512
    height: int = 512
    batch_size: int = 1
    n_iter: int = 1
    clip_skip: int = 1
    # Checkpoint title or name for this request only; None means the currently loaded one.
    sd_model_checkpoint: str | None = None
    # Scripts (webui.plugins), as plain data so a queued job carries them: the script chosen in the
    # "Script" dropdown and its ui() values, the always-visible scripts' values by title, and the
    # infotext entries extensions added (p.extra_generation_params).
    script_name: str | None = None
    script_args: tuple[Any, ...] = ()
    alwayson_scripts: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    extra_generation_params: tuple[tuple[str, Any], ...] = ()
    control_units: tuple[ControlUnit, ...] = ()  # ControlNet units, disabled ones included

    def validate(self) -> None:
        """Raise InvalidParameter naming the first field that is out of range."""
        _check_range("steps", self.steps, 1, 150)
        _check_range("cfg_scale", self.cfg_scale, 0.0, 30.0)
        _check_range("cfg_rescale", self.cfg_rescale, 0.0, 1.0)
        for name in ("width", "height"):
            value = getattr(self, name)
            _check_range(name, value, MIN_SIDE, MAX_SIDE)
            if value % 8:
                raise InvalidParameter(f"{name} must be a multiple of 8, got {value}")
        _check_range("batch_size", self.batch_size, 1, 8)
        _check_range("n_iter", self.n_iter, 1, 100)
        _check_range("clip_skip", self.clip_skip, 1, 12)
        _check_range("seed", self.seed, -1, 2**32 - 1)
        has_input = bool(getattr(self, "init_images", ()))  # Img2Img
        for index, unit in enumerate(self.control_units):
            unit.validate(index, has_input)

    def replace(self, **changes: Any) -> "GenerationParams":
        return dataclasses.replace(self, **changes)

    @property
    def total_images(self) -> int:
        return self.batch_size * self.n_iter


@dataclass(frozen=True)
class Txt2Img(GenerationParams):
    """txt2img: the common fields (hires fix and the refiner's fields will live here)."""


# A1111's choices, in the order of their API integers (resize_mode, inpainting_fill, inpaint_full_res,
# inpainting_mask_invert).
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")
INPAINT_AREAS = ("Whole picture", "Only masked")
MASK_MODES = ("Inpaint masked", "Inpaint not masked")


@dataclass(frozen=True)
class Img2Img(GenerationParams):
    """img2img, sketch and inpaint: txt2img's fields plus the input image(s) and, for inpaint, the mask.

    `width`/`height` are the output size; the input is resized to it with `resize_mode`. A mask is white
    where the image is repainted (before `inpainting_mask_invert`)."""

    init_images: tuple[Image.Image, ...] = ()
    mask: Image.Image | None = None
    denoising_strength: float = 0.75
    resize_mode: int = 0
    mask_blur: int = 4
    inpainting_fill: int = 1
    inpaint_full_res: bool = False
    inpaint_full_res_padding: int = 32
    inpainting_mask_invert: int = 0

    def validate(self) -> None:
        super().validate()
        if not self.init_images:
            raise InvalidParameter("img2img needs an input image (init_images is empty)")
        _check_range("denoising_strength", self.denoising_strength, 0.0, 1.0)
        _check_range("resize_mode", self.resize_mode, 0, len(RESIZE_MODES) - 1)
        _check_range("mask_blur", self.mask_blur, 0, 64)
        _check_range("inpainting_fill", self.inpainting_fill, 0, len(MASKED_CONTENT) - 1)
        _check_range("inpaint_full_res_padding", self.inpaint_full_res_padding, 0, 256)
        _check_range("inpainting_mask_invert", self.inpainting_mask_invert, 0, 1)

    @classmethod
    def from_txt2img(cls, params: GenerationParams, **fields: Any) -> Img2Img:
        """`params` as an Img2Img with `fields` set (img2img fields, or common ones to change)."""
        return cls(**{**{name: getattr(params, name) for name in field_names(GenerationParams)}, **fields})

    @property
    def is_inpaint(self) -> bool:
        return self.mask is not None


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}, got {value}")


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@dataclass(frozen=True)
class Result:
    """What one finished job hands back: images in order, each with its infotext and seed."""

    params: GenerationParams  # with the seed resolved (never -1)
    images: tuple[Image.Image, ...]
    infotexts: tuple[str, ...]
    seeds: tuple[int, ...]
    paths: tuple[str, ...] = field(default=())  # saved files, empty when not saved
    interrupted: bool = False
    warnings: tuple[str, ...] = ()  # things the user asked for that were skipped (e.g. an unfit LoRA)
    # The checkpoint and VAE that made the images (None: not known, e.g. a script's own result).
    sd_model_name: str | None = None
    sd_model_hash: str | None = None
    sd_vae_name: str | None = None  # None also when the checkpoint's own VAE ran
    sd_vae_hash: str | None = None


@dataclass(frozen=True)
class Request:
    """A queued job: what to generate plus what to do with it. Plain data, so a queue could ship it."""

    params: GenerationParams
    save_images: bool = True

    @property
    def kind(self) -> str:
        """The outputs folder kind and the progress label: "txt2img" or "img2img"."""
        return "img2img" if isinstance(self.params, Img2Img) else "txt2img"


@dataclass(frozen=True)
class SwitchCheckpoint:
    """A queued checkpoint change: it waits for the running generation instead of pulling its model away."""

    title: str


@dataclass(frozen=True)
class SwitchVae:
    """A queued "SD VAE" change (Automatic, None or a file name), queued like a checkpoint change."""

    choice: str
