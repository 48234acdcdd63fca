"""The generation settings a checkpoint says it wants (native size, steps, CFG, CFG Rescale, …), read from
its metadata.

Which fields a checkpoint may set is the parameter schema's `model_default` (webui/core/params.py). Two
safetensors metadata entries are read:
- `modelspec.resolution`: the Stability model-spec field, "<width>x<height>", e.g. "1024x1024";
- `webui.default_params`: JSON such as {"width": 64, "height": 64, "steps": 20, "cfg_scale": 7.0,
  "cfg_rescale": 0.7}, which the bundled demo model carries (any subset of those keys; it wins over
  modelspec.resolution).
A checkpoint without them gets its architecture's native size and the declared defaults of the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Mapping
from typing import Any

from webui.core import schema
from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Txt2Img

log = logging.getLogger(__name__)

RESOLUTION_KEY = "modelspec.resolution"
PARAMS_KEY = "webui.default_params"


@functools.cache
def defaults_type(params_type: type[GenerationParams]) -> Any:
    """A frozen dataclass with one field per `model_default` field of `params_type`, defaulting to its
    declared default."""
    declared = schema.model_default_fields(params_type)
    fields = [(f.name, f.kind, dataclasses.field(default=f.default)) for f in declared]
    return dataclasses.make_dataclass("GenerationDefaults", fields, frozen=True)


GenerationDefaults = defaults_type(Txt2Img)


class BadDefaults(ValueError):
    pass


def _checked(params_type: type[GenerationParams], name: str, value: Any) -> Any:
    """`value` for the field `name` as the schema declares it (JSON numbers: 5 is a float's 5.0)."""
    item = schema.field_map(params_type)[name]
    try:
        return schema.check(item, value)
    except InvalidParameter as error:
        raise BadDefaults(f"{name} {value!r}: {error}") from None


def _resolution(params_type: type[GenerationParams], text: str) -> dict[str, Any]:
    width, sep, height = text.strip().lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        raise BadDefaults(f"{RESOLUTION_KEY} {text!r} is not '<width>x<height>'")
    return {
        "width": _checked(params_type, "width", int(width)),
        "height": _checked(params_type, "height", int(height)),
    }


def _params(params_type: type[GenerationParams], text: str) -> dict[str, Any]:
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise BadDefaults(f"{PARAMS_KEY} is not JSON ({exc})") from None
    if not isinstance(given, dict):
        raise BadDefaults(f"{PARAMS_KEY} is not a JSON object")
    known = {f.name for f in schema.model_default_fields(params_type)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise BadDefaults(
            f"{PARAMS_KEY} names {', '.join(unknown)}; a checkpoint may set {', '.join(sorted(known))}"
        )
    return {name: _checked(params_type, name, value) for name, value in given.items()}


def read_defaults(
    metadata: Mapping[str, str],
    native_size: int,
    source: str = "checkpoint",
    params_type: type[GenerationParams] = Txt2Img,
) -> Any:
    """The checkpoint's defaults (a `defaults_type(params_type)`): `native_size` squared and the declared
    defaults, overridden by its metadata.

    Broken metadata is not worth refusing a model over: it is logged, named, and the entry is ignored."""
    defaults = defaults_type(params_type)(width=native_size, height=native_size)
    for key, parse in ((RESOLUTION_KEY, _resolution), (PARAMS_KEY, _params)):
        if key not in metadata:
            continue
        try:
            defaults = dataclasses.replace(defaults, **parse(params_type, metadata[key]))
        except BadDefaults as error:
            log.warning("%s: ignoring its %s metadata: %s", source, key, error)
    return defaults
