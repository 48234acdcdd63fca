"""Request bodies of the A1111-compatible API, with A1111's field names and defaults."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any, ClassVar

from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from webui.core import image_limits, samplers, schema
from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.services.container import Services
from webui.services.option_table import OPTIONS_BY_NAME

# A1111 options that map onto generation parameters when sent in `override_settings`; every other
# option of the settings table is set for the request's job alone (see App.submit).
OVERRIDABLE = {"sd_model_checkpoint": "sd_model_checkpoint", "CLIP_stop_at_last_layers": "clip_skip"}


def _request_field(item: schema.Field) -> tuple[Any, Any]:
    """A pydantic field for a declared generation field: its type, API default and limits."""
    spec, default = item.spec, schema.api_default(item)
    annotation: Any = item.kind | None if item.optional or default is None else item.kind
    limits: dict[str, Any] = {}
    if item.kind is not bool:
        if spec.by_index:
            limits = {"ge": 0, "le": len(spec.choice_labels()) - 1}
        elif spec.minimum is not None and spec.maximum is not None:
            limits = {"ge": spec.minimum, "le": spec.maximum}
        if spec.multiple_of:
            limits["multiple_of"] = spec.multiple_of
    labels = spec.choice_labels()
    choices = f" ({', '.join(f'{i}: {label}' for i, label in enumerate(labels))})" if spec.by_index else ""
    return annotation, Field(default=default, description=f"{spec.label}{choices}", **limits)


def request_fields(params_type: type[GenerationParams]) -> dict[str, Any]:
    """The API request fields of a params class: every declared field the API sets by its own name."""
    return {item.name: _request_field(item) for item in schema.fields(params_type) if item.spec.api}


class GenerationRequest(BaseModel):
    """What every A1111 generation request has beyond the declared fields (added by `request_model`).

    A1111 clients send many fields; the ones we do not know are accepted and ignored when they hold their
    neutral value, and refused (see `_refuse_unsupported`) when they ask for a feature we lack."""

    model_config = ConfigDict(extra="allow")
    params_type: ClassVar[type[GenerationParams]] = Txt2Img

    styles: list[str] = Field(default_factory=list)
    sampler_index: str = "Euler"  # A1111's legacy field, used when sampler_name is absent
    override_settings: dict[str, Any] = Field(default_factory=dict)
    override_settings_restore_afterwards: bool = True
    send_images: bool = True
    save_images: bool = False
    # Scripts (webui.plugins): the selectable script by title and its args, and always-on scripts'
    # args by title as {"Title": {"args": [...]}}; the "ControlNet" entry is the built-in ControlNet's.
    script_name: str | None = None
    script_args: list[Any] = Field(default_factory=list)
    alwayson_scripts: dict[str, Any] = Field(default_factory=dict)
    # eta for this request (None: the option for the sampler's kind, eta_ddim or eta_ancestral)
    eta: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _seed_resize_off(cls, data: Any) -> Any:
        """A1111's API default for seed_resize_from_w/h is -1: off, as 0 is."""
        if not isinstance(data, dict):
            return data
        names = ("seed_resize_from_w", "seed_resize_from_h")
        off = {name: 0 for name in names if isinstance(data.get(name), (int, float)) and data[name] < 0}
        return {**data, **off}

    @model_validator(mode="before")
    @classmethod
    def _refiner_switch_null(cls, data: Any) -> Any:
        """A1111's API default for refiner_switch_at is null: with a refiner, that switches at once (A1111
        skips its switch-point test); without one it means nothing."""
        if (
            not isinstance(data, dict)
            or "refiner_switch_at" not in data
            or data["refiner_switch_at"] is not None
        ):
            return data
        if str(data.get("refiner_checkpoint") or "None").lower() != "none":
            return {**data, "refiner_switch_at": 0.0}
        return {key: value for key, value in data.items() if key != "refiner_switch_at"}

    def to_params(
        self, default_clip_skip: int, model_defaults: GenerationParams | None = None
    ) -> GenerationParams:
        """The request as params. A `model_default` field (size, steps, CFG, CFG Rescale) the request does
        not send takes its value from `model_defaults` (the loaded checkpoint's, as the UI starts from);
        a value the request sends always wins."""
        self._refuse_unsupported()
        # Unknown names are refused by App.submit, which also knows the options extensions added.
        overrides = {
            OVERRIDABLE[key]: OPTIONS_BY_NAME[key].validate(value)
            for key, value in self.override_settings.items()
            if key in OVERRIDABLE
        }
        declared = {
            item.name: getattr(self, item.name) for item in schema.fields(self.params_type) if item.spec.api
        }
        if model_defaults is not None:
            omitted = [
                item.name
                for item in schema.model_default_fields(self.params_type)
                if item.spec.api and item.name not in self.model_fields_set
            ]
            declared.update({name: getattr(model_defaults, name) for name in omitted})
        # A1111: no sampler_name means the legacy sampler_index, no scheduler means Automatic
        declared["sampler_name"] = declared["sampler_name"] or self.sampler_index
        declared["scheduler"] = declared["scheduler"] or samplers.AUTOMATIC
        declared["restore_faces"] = bool(declared["restore_faces"])  # null: the face_restoration option
        return self.params_type(
            **declared,
            clip_skip=int(overrides.get("clip_skip", default_clip_skip)),
            sd_model_checkpoint=overrides.get("sd_model_checkpoint") or None,
            script_name=(self.script_name or "").strip() or None,
            script_args=tuple(self.script_args),
            alwayson_scripts=alwayson_args(self.alwayson_scripts),
            control_units=_controlnet_units(self.alwayson_scripts),
            eta=self.eta,
            **self._own_values(),
        )

    def _own_values(self) -> dict[str, Any]:
        """Values of params fields this request sets in its own way (img2img's images and mask blur)."""
        return {}

    def _refuse_unsupported(self) -> None:
        """Features A1111 has and we do not yet: say so instead of silently generating something else
        (txt2img has none left; Img2ImgFields refuses img2img's)."""


class Img2ImgFields(GenerationRequest):
    """img2img's own API fields: images as base64, and A1111's mask blur spellings."""

    params_type: ClassVar[type[GenerationParams]] = Img2Img

    init_images: list[str] = Field(default_factory=list)
    mask: str | None = None
    mask_blur: int | None = None  # when set, it is both mask_blur_x and mask_blur_y (as in A1111)
    mask_blur_x: int = 4
    mask_blur_y: int = 4
    include_init_images: bool = False  # echo init_images and mask in the response's "parameters"

    def _own_values(self) -> dict[str, Any]:
        return {
            "init_images": tuple(
                decode_image(text, f"init_images[{i}]") for i, text in enumerate(self.init_images)
            ),
            "mask": decode_image(self.mask, "mask") if self.mask else None,
            "mask_blur": self._mask_blur(),
        }

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
                f"mask_blur_x ({self.mask_blur_x}) and mask_blur_y ({self.mask_blur_y}) differ; only one "
                "blur for both directions is supported: send mask_blur"
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


def request_model(name: str, base: type[GenerationRequest]) -> type[GenerationRequest]:
    """`base` with a field for every declared field of its params type (limits in /openapi.json)."""
    model: type[GenerationRequest] = create_model(name, __base__=base, **request_fields(base.params_type))
    return model


def params_for(body: GenerationRequest, services: Services) -> GenerationParams:
    """The request's params with what the server fills in: Clip skip from the settings, and the loaded
    checkpoint's defaults for the model-default fields the request left out."""
    return body.to_params(services.settings.get("CLIP_stop_at_last_layers"), services.models.model_defaults())


Txt2ImgRequest = request_model("Txt2ImgRequest", GenerationRequest)
# A1111's img2img API defaults differ from its UI's (inpaint_full_res on, padding 0, content "fill"):
# the schema's api_default carries them.
Img2ImgRequest = request_model("Img2ImgRequest", Img2ImgFields)


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
        image = Image.open(io.BytesIO(raw))  # reads the header only: the size is known before any pixel
        image_limits.check_size(*image.size, f"{field}: image")
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
