"""Request bodies of the A1111-compatible API, with A1111's field names and defaults."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.services.settings import OPTIONS_BY_NAME

# A1111 options that map onto generation parameters when sent in `override_settings`; every other
# option of the settings table is set for the request's job alone (see App.submit).
OVERRIDABLE = {"sd_model_checkpoint": "sd_model_checkpoint", "CLIP_stop_at_last_layers": "clip_skip"}


class Txt2ImgRequest(BaseModel):
    # A1111 clients send many fields; the ones we do not know are accepted and ignored when they hold
    # their neutral value, and refused (see `unsupported`) when they ask for a feature we lack.
    model_config = ConfigDict(extra="allow")

    prompt: str = ""
    negative_prompt: str = ""
    styles: list[str] = Field(default_factory=list)
    seed: int = -1
    sampler_name: str | None = None
    sampler_index: str = "Euler"  # A1111's legacy field, used when sampler_name is absent
    scheduler: str | None = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    cfg_rescale: float = 0.0  # CFG Rescale φ (not in A1111's core API; SD.Next, Forge and extensions have it)
    width: int = 512
    height: int = 512
    override_settings: dict[str, Any] = Field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    send_images: bool = True
    save_images: bool = False
    # Scripts (webui.plugins): the selectable script by title and its args, and always-on scripts'
    # args by title as {"Title": {"args": [...]}}; the "ControlNet" entry is the built-in ControlNet's.
    script_name: str | None = None
    script_args: list[Any] = Field(default_factory=list)
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)

    def to_params(self, default_clip_skip: int) -> GenerationParams:
        self._refuse_unsupported()
        # Unknown names are refused by App.submit, which also knows the options extensions added.
        overrides = {
            OVERRIDABLE[key]: OPTIONS_BY_NAME[key].validate(value)
            for key, value in self.override_settings.items()
            if key in OVERRIDABLE
        }
        return Txt2Img(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            steps=self.steps,
            cfg_scale=self.cfg_scale,
            cfg_rescale=self.cfg_rescale,
            sampler_name=self.sampler_name or self.sampler_index,
            scheduler=self.scheduler or "Automatic",
            seed=self.seed,
            width=self.width,
            height=self.height,
            batch_size=self.batch_size,
            n_iter=self.n_iter,
            clip_skip=int(overrides.get("clip_skip", default_clip_skip)),
            sd_model_checkpoint=overrides.get("sd_model_checkpoint") or None,
            script_name=(self.script_name or "").strip() or None,
            script_args=tuple(self.script_args),
            alwayson_scripts=alwayson_args(self.alwayson_scripts),
            control_units=_controlnet_units(self.alwayson_scripts),
        )

    def _refuse_unsupported(self) -> None:
        """Features A1111 has and we do not yet: say so instead of silently generating something else."""
        extra = self.model_extra or {}
        wanted = [
            name for name in ("enable_hr", "restore_faces", "tiling", "subseed_strength") if extra.get(name)
        ]
        if wanted:
            raise InvalidParameter(f"Not supported yet: {', '.join(wanted)}")


class Img2ImgRequest(Txt2ImgRequest):
    """txt2img's body plus A1111's img2img/inpaint fields, with the defaults of A1111's API (which differ
    from its UI's: inpaint_full_res on, padding 0, masked content "fill"). Images are base64."""

    init_images: list[str] = Field(default_factory=list)
    mask: str | None = None
    denoising_strength: float = 0.75
    resize_mode: int = 0
    mask_blur: int | None = None  # when set, it is both mask_blur_x and mask_blur_y (as in A1111)
    mask_blur_x: int = 4
    mask_blur_y: int = 4
    inpainting_fill: int = 0
    inpaint_full_res: bool = True
    inpaint_full_res_padding: int = 0
    inpainting_mask_invert: int = 0
    include_init_images: bool = False  # echo init_images and mask in the response's "parameters"

    def to_params(self, default_clip_skip: int) -> Img2Img:
        base = super().to_params(default_clip_skip)
        return Img2Img.from_txt2img(
            base,
            init_images=tuple(
                decode_image(text, f"init_images[{i}]") for i, text in enumerate(self.init_images)
            ),
            mask=decode_image(self.mask, "mask") if self.mask else None,
            denoising_strength=self.denoising_strength,
            resize_mode=self.resize_mode,
            mask_blur=self._mask_blur(),
            inpainting_fill=self.inpainting_fill,
            inpaint_full_res=self.inpaint_full_res,
            inpaint_full_res_padding=self.inpaint_full_res_padding,
            inpainting_mask_invert=self.inpainting_mask_invert,
        )

    def echo(self) -> dict[str, Any]:
        """The request as A1111's response repeats it: without the images unless include_init_images."""
        parameters = self.model_dump()
        if not self.include_init_images:
            parameters["init_images"] = parameters["mask"] = None
        return parameters

    def _mask_blur(self) -> int:
        if self.mask_blur is not None:
            return self.mask_blur
        if self.mask_blur_x != self.mask_blur_y:
            raise InvalidParameter(
                f"mask_blur_x ({self.mask_blur_x}) and mask_blur_y ({self.mask_blur_y}) differ; only one blur "
                "for both directions is supported: send mask_blur"
            )
        return self.mask_blur_x

    def _refuse_unsupported(self) -> None:
        super()._refuse_unsupported()
        extra = self.model_extra or {}
        wanted = ["latent_mask"] if extra.get("latent_mask") else []
        if extra.get("initial_noise_multiplier") not in (None, 1, 1.0):
            wanted.append("initial_noise_multiplier")
        if wanted:
            raise InvalidParameter(f"Not supported yet: {', '.join(wanted)}")


# alwayson_scripts keys read elsewhere (the built-in ControlNet), compared in lower case.
FOREIGN_ALWAYSON = ("controlnet",)


def _controlnet_units(scripts: dict[str, Any]) -> tuple[Any, ...]:
    # imported here: controlnet_routes uses decode_image from this module
    from webui.api.controlnet_routes import units_from_alwayson

    return units_from_alwayson(scripts)


def alwayson_args(scripts: dict[str, Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """A1111's {"Title": {"args": [...]}} as params data; InvalidParameter for another shape."""
    result = []
    for title, entry in scripts.items():
        if title.strip().lower() in FOREIGN_ALWAYSON:
            continue
        args = entry.get("args", []) if isinstance(entry, dict) else None
        if not isinstance(args, list):
            raise InvalidParameter(
                f'alwayson_scripts[{title!r}] must look like {{"args": [...]}}, got {entry!r}'
            )
        result.append((title, tuple(args)))
    return tuple(result)


def decode_image(text: str, field: str) -> Image.Image:
    """A base64 image of a request (a data: URL prefix is allowed), fully read. InvalidParameter (HTTP 422)
    names the field when the text is not base64 or the bytes are not an image."""
    data = text.strip()
    if data.startswith(("http://", "https://")):
        raise InvalidParameter(f"{field}: URLs are not fetched; send the image itself as base64")
    if data.startswith("data:"):
        _, comma, data = data.partition(",")
        if not comma:
            raise InvalidParameter(f"{field}: a data URL needs a ',' before the base64 data")
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidParameter(f"{field}: not valid base64 ({error})") from None
    if not raw:
        raise InvalidParameter(f"{field}: empty image")
    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except Image.DecompressionBombError as error:
        raise InvalidParameter(f"{field}: image too large ({error})") from None
    except UnidentifiedImageError:
        raise InvalidParameter(
            f"{field}: not an image (PNG, JPEG, WebP or another format Pillow reads)"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:  # truncated or corrupt data
        raise InvalidParameter(f"{field}: a damaged image that cannot be read ({error})") from None
    return image
