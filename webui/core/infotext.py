"""A1111 infotext: the generation parameters saved with every image, built from params and read back.

The format (A1111 v1.10)::

    a photo of a cat            ← prompt, any number of lines
    Negative prompt: blurry     ← only when there is one; may span lines too
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, …

The last line holds the parameters in A1111's key order, extras after the known keys and Version last.
A value is written bare unless it holds ',', ':' or a newline; then it is a JSON string. Lines are
stripped when read (as A1111 does), and a prompt line starting with "Negative prompt:" cannot be told
apart from the negative prompt. Beyond A1111, values that start with '"' or have surrounding
whitespace are quoted too, because A1111's reader would change them otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from webui.core import controlnet_infotext, samplers
from webui.core.errors import InvalidParameter
from webui.core.params import INPAINT_AREAS, MASK_MODES, MASKED_CONTENT, GenerationParams, Img2Img, Txt2Img

NEGATIVE_PREFIX = "Negative prompt:"

# A1111's keys in the order it writes them; extras that use one of these names take its place.
A1111_KEY_ORDER = (
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Image CFG scale",
    "Seed",
    "Face restoration",
    "Size",
    "Model hash",
    "Model",
    "FP8 weight",
    "Cache FP16 weight for LoRA",
    "VAE hash",
    "VAE",
    "Variation seed",
    "Variation seed strength",
    "Seed resize from",
    "Denoising strength",
    "Conditional mask weight",
    "Clip skip",
    "ENSD",
    "Token merging ratio",
    "Token merging ratio hr",
    "Init image hash",
    "RNG",
    "Tiling",
)

# CFG Rescale φ, as reForge writes it; the A1111 extensions' spellings are read too
CFG_RESCALE_KEY = "CFG Rescale"
CFG_RESCALE_ALIASES = (CFG_RESCALE_KEY, "CFG Rescale φ", "CFG Rescale phi")

Value = str | int | float | bool

_KEY = re.compile(r"\w[\w \-/]+")
# One `key: value` pair: the value is a JSON string or runs to the next comma (A1111's reading rule).
_PAIR = re.compile(
    r"""\s*(\w[\w \-/]+)        # key: a word character, then word characters, spaces, '-' or '/'
        :\s*
        ("(?:\\.|[^\\"])+"      # a JSON string with escapes ...
         |[^,]*)                # ... or everything up to the next comma
        (?:,|$)""",
    re.VERBOSE,
)
_SIZE = re.compile(r"(\d+)x(\d+)")


def format_value(value: Value) -> str:
    """A value as A1111 prints it: 7.0 → "7", 7.5 → "7.5", True → "True"."""
    if isinstance(value, (int, str)):  # bool included: True → "True"
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise TypeError(f"infotext values must be str, int, float or bool, got {type(value).__name__}")


def quote(text: str) -> str:
    """`text` as a JSON string when A1111's reader needs one, else unchanged."""
    needs_json = any(char in text for char in ",:\n") or text.startswith('"') or text != text.strip()
    return json.dumps(text, ensure_ascii=False) if needs_json else text


def _pair(key: str, value: Value) -> str:
    if not _KEY.fullmatch(key) or key in ("Prompt", "Negative prompt"):
        raise ValueError(f"{key!r} cannot be an infotext key (letters, digits, spaces, '-', '/'; 2+ chars)")
    text = format_value(value)
    return key if text == key else f"{key}: {quote(text)}"  # A1111 writes a flag once when key == value


def build(
    params: GenerationParams,
    *,
    seed: int | None = None,
    model_name: str | None = None,
    model_hash: str | None = None,
    vae_name: str | None = None,
    vae_hash: str | None = None,
    extra: Mapping[str, Value | None] | None = None,
    version: str | None = None,
) -> str:
    """The infotext of one image made with `params` (and `seed`, when the batch gave it another one).

    `extra` (e.g. RNG, Lora hashes, TI hashes) is written after the known keys, or in the place of a
    known key it names; None values are left out. Version comes last, from `version` or `extra`.
    Params with a `denoising_strength` (img2img) get it written in its A1111 place.
    """
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    fields: dict[str, Value | None] = dict.fromkeys(A1111_KEY_ORDER)
    fields.update(
        {
            "Steps": params.steps,
            "Sampler": choice.sampler_name,
            "Schedule type": choice.scheduler,
            "CFG scale": params.cfg_scale,
            "Seed": params.seed if seed is None else seed,
            "Size": f"{params.width}x{params.height}",
            "Model hash": model_hash,
            "Model": model_name,
            "VAE hash": vae_hash,
            "VAE": vae_name,
            "Denoising strength": getattr(params, "denoising_strength", None),
            "Clip skip": params.clip_skip if params.clip_skip > 1 else None,
        }
    )
    fields.update(_inpaint_fields(params))
    fields[CFG_RESCALE_KEY] = params.cfg_rescale or None  # not an A1111 key: after its keys, 0 left out
    # What extensions added (p.extra_generation_params), then the engine's own extras, which win.
    fields.update(getattr(params, "extra_generation_params", ()))
    fields.update(extra or {})
    last = version if version is not None else fields.get("Version")
    fields.pop("Version", None)
    fields["Version"] = last
    line = ", ".join(_pair(key, value) for key, value in fields.items() if value is not None)
    negative = f"\n{NEGATIVE_PREFIX} {params.negative_prompt}" if params.negative_prompt else ""
    return f"{params.prompt}{negative}\n{line}".strip()


def _inpaint_fields(params: GenerationParams) -> dict[str, Value | None]:
    """What A1111 writes for an inpaint (img2img with a mask), in its order: "Mask blur" always (its
    img2img tab does), the rest only when not the default: "Mask mode" for "Inpaint not masked",
    "Inpaint area" + "Masked area padding" for "Only masked", "Masked content" unless "original"."""
    if not isinstance(params, Img2Img) or not params.is_inpaint:
        return {}
    only_masked = bool(params.inpaint_full_res)
    content = MASKED_CONTENT[params.inpainting_fill]
    return {
        "Mask blur": params.mask_blur,
        "Mask mode": MASK_MODES[params.inpainting_mask_invert] if params.inpainting_mask_invert else None,
        "Inpaint area": INPAINT_AREAS[1] if only_masked else None,
        "Masked area padding": params.inpaint_full_res_padding if only_masked else None,
        "Masked content": content if content != "original" else None,
    }


def with_extra(text: str, extra: Mapping[str, Value | None]) -> str:
    """`text` with `extra` written into its parameters line (replacing same-named keys, Version kept
    last): e.g. a grid's "X Type"/"X Values" added to the infotext of its first image."""
    fields = parse(text)
    prompt, negative = fields.pop("Prompt"), fields.pop("Negative prompt")
    merged: dict[str, Value | None] = {**fields, **extra}
    if "Version" in merged:
        merged["Version"] = merged.pop("Version")
    line = ", ".join(_pair(key, value) for key, value in merged.items() if value is not None)
    negative_line = f"\n{NEGATIVE_PREFIX} {negative}" if negative else ""
    return f"{prompt}{negative_line}\n{line}".strip()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parse(text: str) -> dict[str, str]:
    """ "Prompt", "Negative prompt" and every `key: value` of an infotext, in order, values unquoted.

    The last line holds the parameters only when it has at least three pairs (A1111's rule);
    otherwise everything is prompt. Unknown keys are kept as they are.
    """
    *lines, last = text.strip().split("\n")
    if len(_PAIR.findall(last)) < 3:
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] | None = None
    for line in (line.strip() for line in lines):
        if negative is None and line.startswith(NEGATIVE_PREFIX):
            negative = [line[len(NEGATIVE_PREFIX) :].strip()]
        elif negative is None:
            prompt.append(line)
        else:
            negative.append(line)
    fields = {"Prompt": "\n".join(prompt), "Negative prompt": "\n".join(negative or [])}
    for key, value in _PAIR.findall(last):
        if key not in ("Prompt", "Negative prompt"):
            fields[key] = _unquote(value)
    return fields


def _number(fields: Mapping[str, str], key: str, kind: type[int | float]) -> int | float | None:
    if key not in fields:
        return None
    try:
        return kind(fields[key])
    except ValueError:
        raise InvalidParameter(f"Infotext {key!r} must be a number, got {fields[key]!r}") from None


def to_params(fields: Mapping[str, str]) -> Txt2Img:
    """Txt2Img from parsed infotext fields; missing keys take A1111's defaults (no Clip skip → 1, no
    CFG Rescale → 0).

    The sampler is split as A1111 does ("DPM++ 2M Karras" → DPM++ 2M + Automatic), "Size" gives width
    and height, and "Model" (or "Model hash" without it) selects the checkpoint. Not validated: call
    `validate()` on the result before generating.
    """
    defaults = Txt2Img()
    sampler, schedule = samplers.split_sampler_name(
        fields.get("Sampler") or defaults.sampler_name, fields.get("Schedule type") or samplers.AUTOMATIC
    )
    width, height = defaults.width, defaults.height
    if "Size" in fields:
        size = _SIZE.fullmatch(fields["Size"].strip())
        if size is None:
            raise InvalidParameter(f"Infotext 'Size' must look like 512x768, got {fields['Size']!r}")
        width, height = int(size[1]), int(size[2])
    rescale_key = next((key for key in CFG_RESCALE_ALIASES if key in fields), CFG_RESCALE_KEY)
    numbers = {
        name: value
        for name, value in (
            ("steps", _number(fields, "Steps", int)),
            ("cfg_scale", _number(fields, "CFG scale", float)),
            ("seed", _number(fields, "Seed", int)),
            ("clip_skip", _number(fields, "Clip skip", int)),
            ("cfg_rescale", _number(fields, rescale_key, float)),
        )
        if value is not None
    }
    return Txt2Img(
        prompt=fields.get("Prompt", ""),
        negative_prompt=fields.get("Negative prompt", ""),
        sampler_name=sampler,
        scheduler=schedule,
        width=width,
        height=height,
        sd_model_checkpoint=fields.get("Model") or fields.get("Model hash") or None,
        control_units=controlnet_infotext.units_from_fields(fields),  # "ControlNet N" entries, no images
        **numbers,
    )


def to_img2img_fields(fields: Mapping[str, str]) -> dict[str, int | float | bool]:
    """The Img2Img-only keyword arguments an infotext gives (for "Send to img2img/inpaint"): the
    denoising strength, and for an inpaint infotext (one with "Mask blur") the mask settings, where a key
    A1111 leaves out for its default (Mask mode, Inpaint area, Masked content) means that default."""
    result: dict[str, int | float | bool] = {}
    strength = _number(fields, "Denoising strength", float)
    if strength is not None:
        result["denoising_strength"] = strength
    blur = _number(fields, "Mask blur", int)
    if blur is None:
        return result
    result["mask_blur"] = blur
    result["inpainting_mask_invert"] = _choice_index(fields, "Mask mode", MASK_MODES)
    result["inpaint_full_res"] = bool(_choice_index(fields, "Inpaint area", INPAINT_AREAS))
    result["inpainting_fill"] = _choice_index(fields, "Masked content", MASKED_CONTENT, default="original")
    padding = _number(fields, "Masked area padding", int)
    if padding is not None:
        result["inpaint_full_res_padding"] = padding
    return result


def _choice_index(
    fields: Mapping[str, str], key: str, choices: tuple[str, ...], default: str | None = None
) -> int:
    value = fields.get(key, default or choices[0]).strip()
    if value not in choices:
        raise InvalidParameter(f"Infotext {key!r} must be one of {', '.join(choices)}, got {value!r}")
    return choices.index(value)
