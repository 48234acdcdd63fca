"""The generation settings a checkpoint says it wants (native size, steps, CFG, CFG Rescale), read from
its metadata.

Two safetensors metadata entries are read:
- `modelspec.resolution`: the Stability model-spec field, "<width>x<height>", e.g. "1024x1024";
- `webui.default_params`: JSON such as {"width": 64, "height": 64, "steps": 20, "cfg_scale": 7.0,
  "cfg_rescale": 0.7}, which the bundled demo model carries (any subset of those keys; it wins over
  modelspec.resolution).
A checkpoint without them gets its architecture's native size and the usual 20 steps, CFG 7, no rescale.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from webui.core.params import Txt2Img

log = logging.getLogger(__name__)
_UI = Txt2Img()  # the A1111 defaults a checkpoint without metadata gets

RESOLUTION_KEY = "modelspec.resolution"
PARAMS_KEY = "webui.default_params"
SIDE_RANGE = (64, 2048)  # the width/height sliders' range
STEPS_RANGE = (1, 150)
CFG_RANGE = (1.0, 30.0)
CFG_RESCALE_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class GenerationDefaults:
    width: int = _UI.width
    height: int = _UI.height
    steps: int = _UI.steps
    cfg_scale: float = _UI.cfg_scale
    cfg_rescale: float = _UI.cfg_rescale


class BadDefaults(ValueError):
    pass


def _side(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadDefaults(f"{what} {value!r} is not a whole number")
    try:
        side = int(value)
    except ValueError:
        raise BadDefaults(f"{what} {value!r} is not a whole number") from None
    if not SIDE_RANGE[0] <= side <= SIDE_RANGE[1] or side % 8:
        raise BadDefaults(f"{what} {side} is not a multiple of 8 between {SIDE_RANGE[0]} and {SIDE_RANGE[1]}")
    return side


def _in_range(value: Any, what: str, types: tuple[type, ...], limits: tuple[float, float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, types) or not limits[0] <= value <= limits[1]:
        kind = "whole number" if types == (int,) else "number"
        raise BadDefaults(f"{what} {value!r} is not a {kind} from {limits[0]:g} to {limits[1]:g}")
    return value


def _resolution(text: str) -> dict[str, int]:
    width, sep, height = text.strip().lower().partition("x")
    if not sep:
        raise BadDefaults(f"{RESOLUTION_KEY} {text!r} is not '<width>x<height>'")
    return {"width": _side(width.strip(), "width"), "height": _side(height.strip(), "height")}


def _params(text: str) -> dict[str, Any]:
    try:
        given = json.loads(text)
    except ValueError as exc:
        raise BadDefaults(f"{PARAMS_KEY} is not JSON ({exc})") from None
    if not isinstance(given, dict):
        raise BadDefaults(f"{PARAMS_KEY} is not a JSON object")
    found: dict[str, Any] = {}
    for key in ("width", "height"):
        if key in given:
            found[key] = _side(given[key], key)
    if "steps" in given:
        found["steps"] = _in_range(given["steps"], "steps", (int,), STEPS_RANGE)
    if "cfg_scale" in given:
        found["cfg_scale"] = float(_in_range(given["cfg_scale"], "cfg_scale", (int, float), CFG_RANGE))
    if "cfg_rescale" in given:
        found["cfg_rescale"] = float(
            _in_range(given["cfg_rescale"], "cfg_rescale", (int, float), CFG_RESCALE_RANGE)
        )
    return found


def read_defaults(
    metadata: Mapping[str, str], native_size: int, source: str = "checkpoint"
) -> GenerationDefaults:
    """The checkpoint's defaults: `native_size` squared, 20 steps, CFG 7, overridden by its metadata.

    Broken metadata is not worth refusing a model over: it is logged, named, and the entry is ignored."""
    defaults = GenerationDefaults(width=native_size, height=native_size)
    for key, parse in ((RESOLUTION_KEY, _resolution), (PARAMS_KEY, _params)):
        if key not in metadata:
            continue
        try:
            defaults = replace(defaults, **parse(metadata[key]))
        except BadDefaults as error:
            log.warning("%s: ignoring its %s metadata: %s", source, key, error)
    return defaults
