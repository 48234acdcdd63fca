"""ControlNet units in the infotext, as sd-webui-controlnet writes and reads them::

    ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0, Resize Mode: Crop
    and Resize, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End:
    1.0, Pixel Perfect: False, Control Mode: Balanced"

(one line). One entry per enabled unit, numbered by the unit's place among all units; values of -1 (sliders
the preprocessor does not have) are left out. The entry is a quoted infotext value; inside it, pairs are
split at ", " and ": ", so a value holding either cannot be written (sd-webui-controlnet then leaves the
entry out too). Keys this version does not know (newer writers add "Hr Option", "Save Detected Map", …)
are skipped when read.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from webui.core.control_unit import ControlUnit, control_mode_name, control_resize_mode_name
from webui.core.errors import InvalidParameter

log = logging.getLogger(__name__)

PREFIX = "ControlNet"
MAX_UNITS = 32  # a typo like "ControlNet 9999" must not make ten thousand units
# ControlUnit fields written, in sd-webui-controlnet's order; the key is the field name in title case.
FIELDS = (
    "module",
    "model",
    "weight",
    "resize_mode",
    "processor_res",
    "threshold_a",
    "threshold_b",
    "guidance_start",
    "guidance_end",
    "pixel_perfect",
    "control_mode",
)
_KEY = re.compile(rf"{PREFIX} (\d+)")


def display_name(field: str) -> str:
    """ "resize_mode" → "Resize Mode" (sd-webui-controlnet's rule)."""
    return " ".join(word.capitalize() for word in field.split("_"))


_FIELD_BY_KEY = {display_name(name): name for name in FIELDS}


def _format(value: object) -> str:
    return str(float(value)) if isinstance(value, float) else str(value)


def serialize(unit: ControlUnit) -> str | None:
    """The entry's text, or None when a value holds ", " or ": " and cannot be written."""
    values = {display_name(name): getattr(unit, name) for name in FIELDS}
    pairs = [(key, _format(value)) for key, value in values.items() if value != -1]
    if any("," in text or ":" in text for _, text in pairs):
        return None
    return ", ".join(f"{key}: {text}" for key, text in pairs)


def entries(units: Sequence[ControlUnit]) -> dict[str, str]:
    """`ControlNet N` → entry text for each enabled unit (N: its index in `units`)."""
    found: dict[str, str] = {}
    for index, unit in enumerate(units):
        if not unit.enabled:
            continue
        text = serialize(unit)
        if text is None:
            log.warning(
                "ControlNet unit %d left out of the infotext: a value holds ',' or ':' (%s)",
                index,
                unit.model,
            )
        else:
            found[f"{PREFIX} {index}"] = text
    return found


def _value(field: str, text: str) -> object:
    if field in ("module", "model"):
        return text
    if field == "pixel_perfect":
        if text not in ("True", "False"):
            raise ValueError(f"expected True or False, got {text!r}")
        return text == "True"
    if field == "resize_mode":
        return control_resize_mode_name(text)
    if field == "control_mode":
        return control_mode_name(text)
    return int(float(text)) if field == "processor_res" else float(text)


def parse_unit(text: str, key: str = f"{PREFIX} 0") -> ControlUnit:
    """An enabled ControlUnit (without image) from one entry's text."""
    values: dict[str, object] = {}
    for item in text.split(","):
        name, separator, value = item.strip().partition(": ")
        if not separator:
            raise InvalidParameter(f"Infotext {key!r}: {item.strip()!r} is not a 'Key: value' pair")
        field = _FIELD_BY_KEY.get(name)
        if field is None:
            continue
        try:
            values[field] = _value(field, value.strip())
        except (ValueError, InvalidParameter) as error:
            raise InvalidParameter(f"Infotext {key!r}, {name}: {error}") from None
    return ControlUnit(enabled=True, **values)  # type: ignore[arg-type]


def units_from_fields(fields: Mapping[str, str]) -> tuple[ControlUnit, ...]:
    """The units of parsed infotext fields, each at its index; the gaps are disabled units."""
    parsed = {
        int(m[1]): parse_unit(value, key) for key, value in fields.items() if (m := _KEY.fullmatch(key))
    }
    if not parsed:
        return ()
    if max(parsed) >= MAX_UNITS:
        raise InvalidParameter(f"Infotext '{PREFIX} {max(parsed)}': at most {MAX_UNITS} ControlNet units")
    return tuple(parsed.get(index, ControlUnit(enabled=False)) for index in range(max(parsed) + 1))
