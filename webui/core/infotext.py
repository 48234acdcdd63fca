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
from collections.abc import Callable, Mapping
from typing import Any

from webui.core import controlnet_infotext, samplers, schema
from webui.core.errors import InvalidParameter
from webui.core.params import SAME_SAMPLER, SAME_SCHEDULER, GenerationParams, Img2Img, Txt2Img

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

_PROMPT_KEYS = ("Prompt", "Negative prompt")  # the text above the parameters line, not `key: value` pairs

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

    Every declared field with an infotext key is written (when its `written_when` holds), in A1111's
    key order, other keys after them in declaration order. `extra` (e.g. RNG, Lora hashes, TI hashes)
    is written after those, or in the place of a known key it names; None values are left out. Version
    comes last, from `version` or `extra`.
    """
    choice = samplers.resolve(params.sampler_name, params.scheduler)
    fields: dict[str, Value | None] = dict.fromkeys(A1111_KEY_ORDER)
    fields.update(
        {
            "Sampler": choice.sampler_name,
            "Schedule type": choice.scheduler,
            "Size": f"{params.width}x{params.height}",
            "Seed resize from": _seed_resize_text(params),
            "Model hash": model_hash,
            "Model": model_name,
            "VAE hash": vae_hash,
            "VAE": vae_name,
        }
    )
    for item in schema.fields(type(params)):
        key = item.spec.infotext
        if key is None or key in _PROMPT_KEYS:
            continue
        written = item.spec.written_when is None or item.spec.written_when(params)
        fields[key] = schema.to_text_value(item, getattr(params, item.name)) if written else None
    if isinstance(params, Txt2Img) and params.enable_hr and (params.hr_resize_x or params.hr_resize_y):
        fields["Hires resize"] = f"{params.hr_resize_x}x{params.hr_resize_y}"  # instead of Hires upscale
    if seed is not None:
        fields["Seed"] = seed
    # What extensions added (p.extra_generation_params), then the engine's own extras, which win.
    fields.update(params.extra_generation_params)
    fields.update(extra or {})
    last = version if version is not None else fields.get("Version")
    fields.pop("Version", None)
    fields["Version"] = last
    line = ", ".join(_pair(key, value) for key, value in fields.items() if value is not None)
    negative = f"\n{NEGATIVE_PREFIX} {params.negative_prompt}" if params.negative_prompt else ""
    return f"{params.prompt}{negative}\n{line}".strip()


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
            text: str = json.loads(value)
        except ValueError:
            return value
        return text
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


# Keys that set several fields, or a field together with another key; read by hand. Each reader gets
# all parsed fields and returns field → value; InvalidParameter when its value cannot be read.
def _sampler(fields: Mapping[str, str]) -> dict[str, Any]:
    try:
        names = samplers.split_sampler_name(
            fields["Sampler"], fields.get("Schedule type") or samplers.AUTOMATIC
        )
    except InvalidParameter:
        # an unknown schedule type must not cost the sampler: "Schedule type" reports its own problem
        names = samplers.split_sampler_name(fields["Sampler"])
    return dict(zip(("sampler_name", "scheduler"), names))


def _schedule(fields: Mapping[str, str]) -> dict[str, Any]:
    sampler = fields.get("Sampler") or schema.field_map(GenerationParams)["sampler_name"].default
    return {"scheduler": samplers.split_sampler_name(sampler, fields["Schedule type"])[1]}


def _size(fields: Mapping[str, str]) -> dict[str, Any]:
    size = _SIZE.fullmatch(fields["Size"].strip())
    if size is None:
        raise InvalidParameter(f"Infotext 'Size' must look like 512x768, got {fields['Size']!r}")
    return {"width": int(size[1]), "height": int(size[2])}


def _seed_resize_text(params: GenerationParams) -> str | None:
    width, height = params.seed_resize_from_w, params.seed_resize_from_h
    return f"{width}x{height}" if width > 0 and height > 0 else None  # A1111: written when both are set


def _seed_resize(fields: Mapping[str, str]) -> dict[str, Any]:
    size = _SIZE.fullmatch(fields["Seed resize from"].strip())
    if size is None:
        raise InvalidParameter(
            f"Infotext 'Seed resize from' must look like 512x768, got {fields['Seed resize from']!r}"
        )
    return {"seed_resize_from_w": int(size[1]), "seed_resize_from_h": int(size[2])}


# Hires fix: A1111 writes no key for enable_hr; a pasted infotext turns it on when it has "Denoising
# strength" and one of "Hires upscale", "Hires resize", "Hires upscaler" (else paste resets it to off).
def _hires_on(fields: Mapping[str, str]) -> bool:
    return "Denoising strength" in fields


def _hires_upscale(fields: Mapping[str, str]) -> dict[str, Any]:
    item = schema.field_map(Txt2Img)["hr_scale"]
    return {"enable_hr": _hires_on(fields), "hr_scale": schema.from_text(item, fields["Hires upscale"])}


def _hires_resize(fields: Mapping[str, str]) -> dict[str, Any]:
    size = _SIZE.fullmatch(fields["Hires resize"].strip())
    if size is None:
        raise InvalidParameter(
            f"Infotext 'Hires resize' must look like 1024x0, got {fields['Hires resize']!r}"
        )
    return {"enable_hr": _hires_on(fields), "hr_resize_x": int(size[1]), "hr_resize_y": int(size[2])}


def _hires_upscaler(fields: Mapping[str, str]) -> dict[str, Any]:
    return {"enable_hr": _hires_on(fields), "hr_upscaler": fields["Hires upscaler"]}


def _hires_sampler(fields: Mapping[str, str]) -> dict[str, Any]:
    """The second pass's sampler and schedule type, "Use same …" where they are the first pass's (as
    A1111 pastes them); an old combined name ("DPM++ 2M Karras") is split as for "Sampler"."""
    sampler = fields.get("Sampler") or schema.field_map(GenerationParams)["sampler_name"].default
    schedule = fields.get("Schedule type") or samplers.AUTOMATIC
    first = samplers.split_sampler_name(sampler, schedule)
    hires = samplers.split_sampler_name(
        fields.get("Hires sampler") or sampler, fields.get("Hires schedule type") or schedule
    )
    same = (SAME_SAMPLER, SAME_SCHEDULER)
    names = [label if mine == theirs else mine for mine, theirs, label in zip(hires, first, same)]
    return dict(zip(("hr_sampler_name", "hr_scheduler"), names))


def _model(fields: Mapping[str, str]) -> dict[str, Any]:
    # "Model" (the name) wins over "Model hash"; either selects the checkpoint.
    return {"sd_model_checkpoint": fields.get("Model") or fields.get("Model hash") or None}


COMPOSITE_READERS: Mapping[str, tuple[tuple[str, ...], Callable[[Mapping[str, str]], dict[str, Any]]]] = {
    "Sampler": (("sampler_name", "scheduler"), _sampler),
    "Schedule type": (("scheduler",), _schedule),
    "Size": (("width", "height"), _size),
    "Seed resize from": (("seed_resize_from_w", "seed_resize_from_h"), _seed_resize),
    "Hires upscale": (("enable_hr", "hr_scale"), _hires_upscale),
    "Hires resize": (("enable_hr", "hr_resize_x", "hr_resize_y"), _hires_resize),
    "Hires upscaler": (("enable_hr", "hr_upscaler"), _hires_upscaler),
    "Hires sampler": (("hr_sampler_name", "hr_scheduler"), _hires_sampler),
    "Hires schedule type": (("hr_sampler_name", "hr_scheduler"), _hires_sampler),
    "Face restoration": (("restore_faces",), lambda fields: {"restore_faces": True}),  # its value: the model
    "Model": (("sd_model_checkpoint",), _model),
    "Model hash": (("sd_model_checkpoint",), _model),
}


def key_fields(cls: type[GenerationParams]) -> dict[str, tuple[str, ...]]:
    """Infotext key → the fields of `cls` it sets: every declared key and alias, and the composite keys
    whose fields `cls` has (hires fix's are txt2img's)."""
    declared = {key: (item.name,) for item in schema.fields(cls) for key in item.spec.infotext_keys}
    has = set(schema.field_map(cls))
    composite = {key: names for key, (names, _) in COMPOSITE_READERS.items() if has.issuperset(names)}
    return {**declared, **composite}


def read_key(key: str, fields: Mapping[str, str], cls: type[GenerationParams]) -> dict[str, Any]:
    """What the infotext `key` (present in `fields`) sets in `cls`; InvalidParameter when unreadable."""
    if key in COMPOSITE_READERS and set(schema.field_map(cls)).issuperset(COMPOSITE_READERS[key][0]):
        return COMPOSITE_READERS[key][1](fields)
    if key in _PROMPT_KEYS:
        return {key_fields(cls)[key][0]: fields[key]}
    (name,) = key_fields(cls)[key]
    item = schema.field_map(cls)[name]
    return {name: schema.from_text(item, fields[key])}


def read_values(
    fields: Mapping[str, str], cls: type[GenerationParams] = Txt2Img
) -> tuple[dict[str, Any], dict[str, InvalidParameter]]:
    """The field values of `cls` an infotext gives, and the error of each key that could not be read
    (the others are still read). Fields declared `paste_reset` take their default when their key is
    absent (always, or when the key the declaration names is present: an inpaint infotext's "Mask
    blur"), so an image made without them is remade without them."""
    values: dict[str, Any] = {}
    problems: dict[str, InvalidParameter] = {}
    readable = key_fields(cls)
    for key in fields:
        if key not in readable or (key == "Model hash" and fields.get("Model")):
            continue
        try:
            values.update({k: v for k, v in read_key(key, fields, cls).items() if k not in values})
        except InvalidParameter as error:
            problems[key] = error
    for item in schema.fields(cls):
        reset = item.spec.paste_reset
        if item.name not in values and (reset is True or (isinstance(reset, str) and reset in fields)):
            values[item.name] = item.default
    return values, problems


def to_params(fields: Mapping[str, str]) -> Txt2Img:
    """Txt2Img from parsed infotext fields; missing keys take the declared defaults (no Clip skip → 1,
    no CFG Rescale → 0), an unreadable value raises InvalidParameter.

    The sampler is split as A1111 does ("DPM++ 2M Karras" → DPM++ 2M + Karras), "Size" gives width
    and height, and "Model" (or "Model hash" without it) selects the checkpoint. Not validated: call
    `validate()` on the result before generating.
    """
    values, problems = read_values(fields, Txt2Img)
    if problems:
        raise next(iter(problems.values()))
    # "ControlNet N" entries (their images are not in the infotext)
    return Txt2Img(**values, control_units=controlnet_infotext.units_from_fields(fields))


def to_img2img_fields(fields: Mapping[str, str]) -> dict[str, Any]:
    """The Img2Img-only values an infotext gives (for "Send to img2img/inpaint"): the denoising strength,
    and for an inpaint infotext (one with "Mask blur") the mask settings, where a key A1111 leaves out
    for its default (Mask mode, Inpaint area, Masked content) means that default."""
    own = {item.name for item in schema.fields(Img2Img)} - {
        item.name for item in schema.fields(GenerationParams)
    }
    keys = {key for key, names in key_fields(Img2Img).items() if own.issuperset(names)}
    values, problems = read_values({key: value for key, value in fields.items() if key in keys}, Img2Img)
    if problems:
        raise next(iter(problems.values()))
    return {name: value for name, value in values.items() if name in own}
