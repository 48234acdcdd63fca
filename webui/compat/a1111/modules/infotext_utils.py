"""modules.infotext_utils (A1111 1.8+; generation_parameters_copypaste before): parse an infotext, and
paste buttons. Scripts' `infotext_fields` are pasted by our own paste (webui/ui/paste.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from webui.compat.a1111.modules import _app
from webui.core import infotext

_SIZE = re.compile(r"^(\d+)x(\d+)$")


@dataclass
class ParamBinding:
    paste_button: Any
    tabname: str
    source_text_component: Any = None
    source_image_component: Any = None
    source_tabname: str | None = None
    override_settings_component: Any = None
    paste_field_names: list[str] = field(default_factory=list)


def parse_generation_parameters(x: str, skip_fields: list[str] | None = None) -> dict[str, Any]:
    """A1111's dict of an infotext: "Prompt", "Negative prompt" and each key, sizes also split into
    "<key>-1" / "<key>-2" ("Size-1": "512"), numbers left as text as A1111 does for unknown keys."""
    fields: dict[str, Any] = dict(infotext.parse(x))
    for key, value in list(fields.items()):
        size = _SIZE.match(str(value))
        if size:
            fields[f"{key}-1"], fields[f"{key}-2"] = size.group(1), size.group(2)
    for key in skip_fields or []:
        fields.pop(key, None)
    return fields


def register_paste_params_button(binding: ParamBinding) -> None:
    """Kept for the App; our own paste buttons fill the generation tabs."""
    _app.compat().paste_buttons.append(binding)


def create_buttons(tabs_list: list[str]) -> dict[str, Any]:
    import gradio as gr

    return {tab: gr.Button(f"Send to {tab}", elem_id=f"{tab}_tab") for tab in tabs_list}


def bind_buttons(buttons: dict[str, Any], send_image: Any, send_generate_info: Any) -> None:
    for tabname, button in buttons.items():
        register_paste_params_button(ParamBinding(button, tabname, send_generate_info, send_image))


def image_from_url_text(filedata: Any) -> Any:
    return filedata


def quote(text: str) -> str:
    return infotext.quote(text)
