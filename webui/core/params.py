"""Generation parameters as plain, frozen data.

The same object is the API request body, the UI's output, the queue's job and the source of the
infotext. Field names follow A1111's API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from webui.core import prompts, samplers, schema
from webui.core.control_unit import ControlUnit
from webui.core.errors import InvalidParameter
from webui.core.schema import param

MAX_SIDE = 2048
MIN_SIDE = 64
MAX_SEED = 2**32 - 1


def checked_prompt(field: str) -> Callable[[str], str]:
    """A prompt field's check: length, valid Unicode and finite weights (core/prompts.check_prompt)."""

    def check(text: str) -> str:
        prompts.check_prompt(text, field)
        return text

    return check


def _known_sampler(name: str) -> str:
    samplers.find_sampler(samplers.split_sampler_name(name)[0])  # InvalidParameter lists the names
    return name


@dataclass(frozen=True)
class GenerationParams:
    """What every generation has: txt2img and img2img/inpaint both extend it.

    Each field is declared once (webui/core/schema.py says what a declaration drives). Fields with a
    `Spec` are the user's parameters; the plain ones at the end carry scripts and ControlNet units."""

    prompt: str = param(
        "", label="Prompt", normalize=checked_prompt("prompt"), infotext="Prompt", paste_reset=True
    )
    negative_prompt: str = param(
        "",
        label="Negative prompt",
        normalize=checked_prompt("negative_prompt"),
        infotext="Negative prompt",
        paste_reset=True,
    )
    steps: int = param(
        20,
        label="Sampling steps",
        minimum=1,
        maximum=150,
        step=1,
        api_default=50,
        infotext="Steps",
        axis="Steps",
        model_default=True,
    )
    cfg_scale: float = param(
        7.0,
        label="CFG Scale",
        minimum=1.0,
        maximum=30.0,
        step=0.5,
        infotext="CFG scale",
        axis="CFG Scale",
        model_default=True,
    )
    # CFG Rescale φ (engine.sampling.cfg_rescale); 0 is plain CFG. Not an A1111 key: reForge writes
    # "CFG Rescale", the A1111 extensions "CFG Rescale φ" / "CFG Rescale phi".
    cfg_rescale: float = param(
        0.0,
        label="CFG Rescale",
        minimum=0.0,
        maximum=1.0,
        step=0.05,
        infotext="CFG Rescale",
        aliases=("CFG Rescale φ", "CFG Rescale phi"),
        written_when=lambda p: p.cfg_rescale > 0,
        paste_reset=True,
        axis="CFG Rescale",
        model_default=True,
    )
    # Sampler and schedule type are written and read together (infotext's "Sampler"/"Schedule type"
    # rules live in core/infotext.py); the API's legacy `sampler_index` is api/models.py's.
    sampler_name: str = param(
        "DPM++ 2M", label="Sampling method", normalize=_known_sampler, api_default=None, axis="Sampler"
    )
    scheduler: str = param(
        samplers.AUTOMATIC, label="Schedule type", api_default=None, paste_reset=True, axis="Schedule type"
    )
    seed: int = param(-1, label="Seed", minimum=-1, maximum=MAX_SEED, infotext="Seed", axis="Seed")
    # Variation seed (engine.rng): the seed's noise slerped towards the subseed's by subseed_strength;
    # written only with a strength, as A1111. "Seed resize from: WxH" (core/infotext.py) makes the noise
    # at that size and centres it in the image's; 0 (or A1111's API default -1) is off.
    subseed: int = param(
        -1, label="Variation seed", minimum=-1, maximum=MAX_SEED, infotext="Variation seed",
        written_when=lambda p: p.subseed_strength != 0, paste_reset=True, axis="Var. seed",
    )  # fmt: skip
    subseed_strength: float = param(
        0.0, label="Variation strength", minimum=0.0, maximum=1.0, step=0.01,
        infotext="Variation seed strength", written_when=lambda p: p.subseed_strength != 0, paste_reset=True,
        axis="Var. strength",
    )  # fmt: skip
    seed_resize_from_w: int = param(
        0, label="Resize seed from width", minimum=0, maximum=MAX_SIDE, step=8, paste_reset=True
    )
    seed_resize_from_h: int = param(
        0, label="Resize seed from height", minimum=0, maximum=MAX_SIDE, step=8, paste_reset=True
    )
    # Width and height are infotext's "Size: WxH" (core/infotext.py).
    width: int = param(
        512, label="Width", minimum=MIN_SIDE, maximum=MAX_SIDE, step=8, multiple_of=8, model_default=True
    )
    height: int = param(
        512, label="Height", minimum=MIN_SIDE, maximum=MAX_SIDE, step=8, multiple_of=8, model_default=True
    )
    batch_size: int = param(1, label="Batch size", minimum=1, maximum=8, step=1)
    n_iter: int = param(1, label="Batch count", minimum=1, maximum=100, step=1)
    # A1111's API sets these two through override_settings (CLIP_stop_at_last_layers, sd_model_checkpoint).
    clip_skip: int = param(
        1,
        label="Clip skip",
        minimum=1,
        maximum=12,
        step=1,
        api=False,
        infotext="Clip skip",
        written_when=lambda p: p.clip_skip > 1,
        paste_reset=True,
        axis="Clip skip",
    )
    # Seamless textures (engine.sampling.tiling): circular padding in the UNet and VAE; A1111 writes
    # "Tiling: True" only when on.
    tiling: bool = param(
        False, label="Tiling", infotext="Tiling", written_when=lambda p: p.tiling, paste_reset=True
    )
    # Face restoration of each decoded image (services/face_restoration.py) with the restorer the options
    # choose; that service writes the model's name as the value ("Face restoration: GFPGAN"), and paste
    # reads any value as on (core/infotext.py). A1111's API default is null: the option decides there.
    restore_faces: bool = param(
        False,
        label="Restore faces",
        api_default=None,
        infotext="Face restoration",
        written_when=lambda p: p.restore_faces,
        paste_reset=True,
    )
    # Refiner (engine.sampling.refiner): from `refiner_switch_at` of the steps on, this checkpoint denoises
    # the same latents (A1111 1.6). Off: None, "" or "None". The engine writes it as A1111 does, "name
    # [hash]", and both keys only when a switch happens (another checkpoint, switch before the end). Paste
    # without "Refiner" turns it off (A1111 unticks its accordion) and leaves "Switch at" as it is.
    refiner_checkpoint: str | None = param(
        None, label="Checkpoint", infotext="Refiner", written_when=lambda p: p.refiner_used,
        paste_reset=True, axis="Refiner checkpoint",
    )  # fmt: skip
    refiner_switch_at: float = param(
        0.8, label="Switch at", minimum=0.0, maximum=1.0, step=0.01, infotext="Refiner switch at",
        written_when=lambda p: p.refiner_used, axis="Refiner switch at",
    )  # fmt: skip
    # Checkpoint title or name for this request only; None means the currently loaded one. Infotext's
    # "Model"/"Model hash" name the checkpoint that made an image (core/infotext.py).
    sd_model_checkpoint: str | None = param(
        None, label="Checkpoint", api=False, axis="Checkpoint name", ui=False
    )
    # Scripts (webui.plugins), as plain data so a queued job carries them: the script chosen in the
    # "Script" dropdown and its ui() values, the always-visible scripts' values by title, and the
    # infotext entries extensions added (p.extra_generation_params).
    script_name: str | None = None
    script_args: tuple[Any, ...] = ()
    alwayson_scripts: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    extra_generation_params: tuple[tuple[str, Any], ...] = ()
    control_units: tuple[ControlUnit, ...] = ()  # ControlNet units, disabled ones included
    # The API's per-request eta (None: the option for the sampler, A1111's eta_ddim / eta_ancestral); the
    # engine writes it as A1111 does ("Eta" / "Eta DDIM", engine.sampling.noise)
    eta: float | None = None

    def validate(self) -> None:
        """Raise InvalidParameter naming the first field that breaks its declaration."""
        schema.validate(self)
        samplers.resolve(self.sampler_name, self.scheduler)  # the pair must exist
        has_input = bool(getattr(self, "init_images", ()))  # Img2Img
        for index, unit in enumerate(self.control_units):
            unit.validate(index, has_input)

    def replace(self, **changes: Any) -> "GenerationParams":
        return dataclasses.replace(self, **changes)

    @property
    def total_images(self) -> int:
        return self.batch_size * self.n_iter

    @property
    def refiner_name(self) -> str | None:
        """The refiner checkpoint asked for; None when off (A1111 takes "" and "None" for off too)."""
        return None if self.refiner_checkpoint in (None, "", "None", "none") else self.refiner_checkpoint

    @property
    def refiner_used(self) -> bool:
        """A refiner takes over before the last step (at 1.0 the switch never comes, as in A1111)."""
        return self.refiner_name is not None and self.refiner_switch_at < 1


# Hires fix's latent upscalers (A1111's names; the torch interpolation each means is the engine's), and
# the dropdown choices that mean "as the first pass" (None in params).
LATENT_UPSCALE_MODES = (
    "Latent",
    "Latent (antialiased)",
    "Latent (bicubic)",
    "Latent (bicubic antialiased)",
    "Latent (nearest)",
    "Latent (nearest-exact)",
)
SAME_CHECKPOINT = "Use same checkpoint"
SAME_SAMPLER = "Use same sampler"
SAME_SCHEDULER = "Use same scheduler"


def unless_same(value: str | None, same: str) -> str | None:
    """A hires choice, or None when it means "as the first pass" (None, "" or the "Use same …" label)."""
    return None if value in (None, "", same) else value


def _hires(check: Callable[[Txt2Img], bool]) -> Callable[[Txt2Img], bool]:
    """A hires key is written only when hires fix is on (A1111 writes no key for `enable_hr` itself)."""
    return lambda p: p.enable_hr and check(p)


def _hires_sampler(name: str) -> str:
    return name if unless_same(name, SAME_SAMPLER) is None else _known_sampler(name)


@dataclass(frozen=True)
class Txt2Img(GenerationParams):
    """txt2img: the common fields and hires fix (a second, img2img pass at a larger size; the engine's
    engine.sampling.hires). Its infotext keys are written only when `enable_hr` is on (in A1111's order);
    "Hires upscale", "Hires resize" and "Hires upscaler" turn it on when pasted (core/infotext.py)."""

    enable_hr: bool = param(False, label="Hires. fix", paste_reset=True)
    # A1111's UI starts at 0.7, its API at 0.75; written only with hires fix on.
    denoising_strength: float = param(
        0.7, label="Denoising strength", minimum=0.0, maximum=1.0, step=0.01, api_default=0.75,
        infotext="Denoising strength", written_when=_hires(lambda p: True), axis="Denoising",
    )  # fmt: skip
    # "Use same …" (the API's None): the first pass's checkpoint / sampler / schedule type. The engine writes
    # the checkpoint as A1111 does, "name [hash]"; sampler and schedule type are read together (as Sampler).
    hr_checkpoint_name: str | None = param(
        SAME_CHECKPOINT, label="Hires checkpoint", api_default=None, infotext="Hires checkpoint",
        paste_reset=True,
        written_when=_hires(lambda p: unless_same(p.hr_checkpoint_name, SAME_CHECKPOINT) is not None),
    )  # fmt: skip
    hr_sampler_name: str | None = param(
        SAME_SAMPLER, label="Hires sampling method", api_default=None, normalize=_hires_sampler,
        infotext="Hires sampler", paste_reset=True,
        written_when=_hires(lambda p: p.hires_sampler_name != p.sampler_name),
    )  # fmt: skip
    # "": the first pass's prompt; written only when it differs from it (A1111 1.10).
    hr_prompt: str = param(
        "", label="Hires prompt", infotext="Hires prompt", paste_reset=True,
        written_when=_hires(lambda p: p.hr_prompt not in ("", p.prompt)),
    )  # fmt: skip
    hr_negative_prompt: str = param(
        "", label="Hires negative prompt", infotext="Hires negative prompt", paste_reset=True,
        written_when=_hires(lambda p: p.hr_negative_prompt not in ("", p.negative_prompt)),
    )  # fmt: skip
    hr_scheduler: str | None = param(
        SAME_SCHEDULER, label="Hires schedule type", api_default=None, infotext="Hires schedule type",
        paste_reset=True,
        written_when=_hires(lambda p: p.hires_scheduler != p.scheduler),
    )  # fmt: skip
    # The second pass's size: first pass × hr_scale, or hr_resize_x × hr_resize_y when either is set
    # (0: from the other side and the aspect ratio), written "Hires resize: WxH" (core/infotext.py).
    hr_scale: float = param(
        2.0, label="Upscale by", minimum=1.0, maximum=4.0, step=0.05, infotext="Hires upscale",
        written_when=_hires(lambda p: not (p.hr_resize_x or p.hr_resize_y)),
    )  # fmt: skip
    hr_resize_x: int = param(
        0, label="Resize width to", minimum=0, maximum=MAX_SIDE, step=8, paste_reset=True
    )  # fmt: skip
    hr_resize_y: int = param(
        0, label="Resize height to", minimum=0, maximum=MAX_SIDE, step=8, paste_reset=True
    )  # fmt: skip
    hr_second_pass_steps: int = param(
        0, label="Hires steps", minimum=0, maximum=150, step=1, infotext="Hires steps",
        written_when=_hires(lambda p: p.hr_second_pass_steps > 0), paste_reset=True, axis="Hires steps",
    )  # fmt: skip
    # A latent mode, "None", "Lanczos", "Nearest" or a model upscaler's name (the engine checks it). The
    # API's None is A1111's: the default latent mode, and no "Hires upscaler" key.
    hr_upscaler: str | None = param(
        "Latent", label="Upscaler", api_default=None, infotext="Hires upscaler",
        written_when=_hires(lambda p: p.hr_upscaler is not None), axis="Hires upscaler",
    )  # fmt: skip
    # "✨ Upscale" (A1111 1.8's txt2img_upscale): an image made before stands for the first pass, which is
    # skipped; hires fix's second pass runs on it alone (engine.sampling.hires_upscale). Not in the API.
    firstpass_image: Image.Image | None = None

    def validate(self) -> None:
        super().validate()
        if self.enable_hr:  # the second pass's pair must exist too
            samplers.resolve(self.hires_sampler_name, self.hires_scheduler)

    @property
    def hires_sampler_name(self) -> str:
        return unless_same(self.hr_sampler_name, SAME_SAMPLER) or self.sampler_name

    @property
    def hires_scheduler(self) -> str:
        return unless_same(self.hr_scheduler, SAME_SCHEDULER) or self.scheduler


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
    # A1111's img2img API defaults differ from its UI's: inpaint_full_res on, padding 0, content "fill".
    denoising_strength: float = param(
        0.75,
        label="Denoising strength",
        minimum=0.0,
        maximum=1.0,
        step=0.01,
        infotext="Denoising strength",
        axis="Denoising",
    )
    resize_mode: int = param(0, label="Resize mode", choices=RESIZE_MODES, by_index=True)
    # The inpaint keys are written for an inpaint only, the defaults left out as A1111 does; an inpaint
    # infotext is one with "Mask blur", and pasting one resets the keys it leaves out.
    mask_blur: int = param(
        4,
        label="Mask blur",
        minimum=0,
        maximum=64,
        step=1,
        api=False,
        infotext="Mask blur",
        written_when=lambda p: p.is_inpaint,
    )
    inpainting_mask_invert: int = param(
        0,
        label="Mask mode",
        choices=MASK_MODES,
        by_index=True,
        infotext="Mask mode",
        written_when=lambda p: p.is_inpaint and p.inpainting_mask_invert != 0,
        paste_reset="Mask blur",
    )
    inpaint_full_res: bool = param(
        False,
        label="Inpaint area",
        choices=INPAINT_AREAS,
        by_index=True,
        api_default=True,
        infotext="Inpaint area",
        written_when=lambda p: p.is_inpaint and p.inpaint_full_res,
        paste_reset="Mask blur",
    )
    inpaint_full_res_padding: int = param(
        32,
        label="Only masked padding, pixels",
        minimum=0,
        maximum=256,
        step=4,
        api_default=0,
        infotext="Masked area padding",
        written_when=lambda p: p.is_inpaint and p.inpaint_full_res,
    )
    inpainting_fill: int = param(
        1,
        label="Masked content",
        choices=MASKED_CONTENT,
        by_index=True,
        api_default=0,
        infotext="Masked content",
        written_when=lambda p: p.is_inpaint and p.inpainting_fill != 1,
        paste_reset="Mask blur",
    )

    def validate(self) -> None:
        super().validate()
        if not self.init_images:
            raise InvalidParameter("img2img needs an input image (init_images is empty)")

    @classmethod
    def from_txt2img(cls, params: GenerationParams, **fields: Any) -> Img2Img:
        """`params` as an Img2Img with `fields` set (img2img fields, or common ones to change)."""
        return cls(**{**{name: getattr(params, name) for name in field_names(GenerationParams)}, **fields})

    @property
    def is_inpaint(self) -> bool:
        return self.mask is not None


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
