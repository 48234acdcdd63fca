"""Gradio widgets for declared generation fields (webui/core/schema.py): label, limits, step and choices
come from the field's declaration, so the UI cannot drift from validation and the API."""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.core import schema
from webui.core.params import GenerationParams


def widget(params_type: type[GenerationParams], name: str, value: Any = schema.SAME, **options: Any) -> Any:
    """The widget for field `name` of `params_type`, showing `value` (default: the declared default).

    Numbers with a step are sliders, without one number boxes; A1111's indexed choices are radios whose
    values are the indexes; booleans are checkboxes; text with choices (declared, or passed in `options`)
    a dropdown; the rest text boxes. `options` go to gradio (elem_id, scale, info, …)."""
    item = schema.field_map(params_type)[name]
    spec = item.spec
    shown = item.default if value is schema.SAME else value
    if spec.by_index:  # the radio's values are the indexes (a boolean's too: False 0, True 1)
        choices = [(label, i) for i, label in enumerate(spec.choice_labels())]
        return gr.Radio(choices=choices, value=int(shown), label=spec.label, **options)
    if item.kind is bool:
        return gr.Checkbox(value=shown, label=spec.label, **options)
    if item.kind in (int, float) and spec.step is not None:
        return gr.Slider(spec.minimum, spec.maximum, value=shown, step=spec.step, label=spec.label, **options)
    if item.kind in (int, float):
        precision = 0 if item.kind is int else None
        limits = {"minimum": spec.minimum, "maximum": spec.maximum}
        return gr.Number(value=shown, label=spec.label, precision=precision, **limits, **options)
    if spec.choices is not None or "choices" in options:  # the tab may pass choices it knows better
        options.setdefault("choices", list(spec.choice_labels()))
        return gr.Dropdown(value=shown, label=spec.label, **options)
    return gr.Textbox(value=shown, label=spec.label, **options)


def from_widget(params_type: type[GenerationParams], name: str, value: Any) -> Any:
    """A widget's value as the field's type (sliders and number boxes give floats; an empty number box
    gives None, which means the declared default)."""
    item = schema.field_map(params_type)[name]
    if value is None:
        return item.default
    if item.kind is int:
        return int(value)
    if item.kind is float:
        return float(value)
    if item.kind is bool:
        return bool(value)
    return value


def unplaced_widgets(
    params_type: type[GenerationParams], placed: set[str], elem_prefix: str
) -> dict[str, Any]:
    """Widgets for the declared fields the tab's layout does not place itself (a field added to the
    schema shows up without touching the layout), in declaration order."""
    return {
        item.name: widget(params_type, item.name, elem_id=f"{elem_prefix}_{item.name}")
        for item in schema.fields(params_type)
        if item.spec.ui and item.name not in placed
    }
