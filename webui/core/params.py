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


@dataclass(frozen=True)
class Txt2Img:
    prompt: str = ""
    negative_prompt: str = ""
    steps: int = 20
    cfg_scale: float = 7.0
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

    def validate(self) -> None:
        """Raise InvalidParameter naming the first field that is out of range."""
        _check_range("steps", self.steps, 1, 150)
        _check_range("cfg_scale", self.cfg_scale, 0.0, 30.0)
        for name in ("width", "height"):
            value = getattr(self, name)
            _check_range(name, value, MIN_SIDE, MAX_SIDE)
            if value % 8:
                raise InvalidParameter(f"{name} must be a multiple of 8, got {value}")
        _check_range("batch_size", self.batch_size, 1, 8)
        _check_range("n_iter", self.n_iter, 1, 100)
        _check_range("clip_skip", self.clip_skip, 1, 12)
        _check_range("seed", self.seed, -1, 2**32 - 1)

    def replace(self, **changes: Any) -> "Txt2Img":
        return dataclasses.replace(self, **changes)

    @property
    def total_images(self) -> int:
        return self.batch_size * self.n_iter


# A1111's choices, in the order of their API integers (resize_mode, inpainting_fill, inpaint_full_res,
# inpainting_mask_invert).
RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill", "Just resize (latent upscale)")
MASKED_CONTENT = ("fill", "original", "latent noise", "latent nothing")
INPAINT_AREAS = ("Whole picture", "Only masked")
MASK_MODES = ("Inpaint masked", "Inpaint not masked")


@dataclass(frozen=True)
class Img2Img(Txt2Img):
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

    params: Txt2Img  # (or Img2Img) with the seed resolved (never -1)
    images: tuple[Image.Image, ...]
    infotexts: tuple[str, ...]
    seeds: tuple[int, ...]
    paths: tuple[str, ...] = field(default=())  # saved files, empty when not saved
    interrupted: bool = False
    warnings: tuple[str, ...] = ()  # things the user asked for that were skipped (e.g. an unfit LoRA)


@dataclass(frozen=True)
class Request:
    """A queued job: what to generate plus what to do with it. Plain data, so a queue could ship it."""

    params: Txt2Img  # or Img2Img
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
