"""Infotext → a generation tab's controls: the ↙ paste button, and PNG Info's "Send to" uses it too.

Every parameter the infotext names is set; the others keep their value, except those the schema
declares `paste_reset` (as A1111: the prompts, Clip skip → 1, CFG Rescale → 0, Schedule type → Automatic
and, for an inpaint infotext, the inpaint fields).
The checkpoint is switched only when the option `disable_weights_auto_swap` is off, as in A1111.
Extensions see the parsed fields first (on_infotext_pasted), and scripts' `infotext_fields` are filled
from the keys they name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core import infotext
from webui.core.errors import ModelNotFound, UserError
from webui.core.params import GenerationParams, Img2Img
from webui.ui.generation import GenerationTab
from webui.ui.override_settings import OverrideSettingsSection
from webui.ui.scripts_ui import ScriptsSection

if TYPE_CHECKING:
    from webui.services.container import Services

Component = gr.components.Component


@dataclass(frozen=True)
class Pasted:
    """What an infotext sets: params field → value, the parsed fields, and keys that could not be read."""

    values: dict[str, Any]
    fields: dict[str, str]
    warnings: list[str] = field(default_factory=list)


FieldsHook = Callable[[str, dict[str, str]], dict[str, str]]


def read(
    text: str, on_pasted: FieldsHook | None = None, params_type: type[GenerationParams] = Img2Img
) -> Pasted:
    """The values of `params_type`'s fields an infotext sets (the schema says which keys set which
    fields, and which fields are reset when absent). Unreadable values (an unknown sampler, a bad size)
    are skipped with a warning instead of spoiling the rest. `on_pasted` may change the parsed fields
    first (extensions' on_infotext_pasted). The checkpoint is left to `switch_checkpoint`."""
    fields = infotext.parse(text)
    if on_pasted is not None:
        fields = on_pasted(text, fields)
    values, problems = infotext.read_values(fields, params_type)
    values.pop("sd_model_checkpoint", None)
    warnings = [f"{key} not pasted: {error}" for key, error in problems.items()]
    return Pasted(values=values, fields=fields, warnings=warnings)


def component_value(component: Component, value: Any) -> Any:
    """`value` as `component` takes it: for a radio or dropdown, a params index (inpaint area, masked
    content; booleans as 0/1) becomes the choice with that value, or else the label at that index."""
    choices = getattr(component, "choices", None)
    if isinstance(component, (gr.Radio, gr.Dropdown)) and choices and isinstance(value, (int, bool)):
        values = [choice[1] if isinstance(choice, tuple) else choice for choice in choices]
        index = int(value)
        if index in values:
            return index
        if 0 <= index < len(values):
            return values[index]
    return value


def updates(controls: Mapping[str, Component], pasted: Pasted) -> list[Any]:
    """One update per control, in `controls` order: the pasted value, or no change."""
    return [
        component_value(component, pasted.values[name]) if name in pasted.values else gr.update()
        for name, component in controls.items()
    ]


def switch_checkpoint(app: Services, fields: Mapping[str, str]) -> str | None:
    """Load the checkpoint the infotext names when present and allowed; tell the user otherwise.

    Returns the new title when the checkpoint changed, else None."""
    wanted = [fields[key] for key in ("Model", "Model hash") if fields.get(key)]
    if not wanted:
        return None
    current = app.models.current_title()
    entry = None
    for name in wanted:
        try:
            entry = app.models.find_checkpoint(name)
            break
        except ModelNotFound:
            continue
    if entry is None:
        gr.Info(f"Checkpoint {wanted[0]} from the parameters is not available; keeping {current or 'none'}.")
        return None
    title = app.models.title(entry)
    if entry == app.models.current_entry():
        return None
    if app.settings.get("disable_weights_auto_swap"):
        gr.Info(
            f"The parameters were made with {title}; keeping {current or 'none'} (Settings → Infotext: "
            "do not change the selected model when reading generation parameters)."
        )
        return None
    return app.models.select_checkpoint(title)


def script_fields(tab: GenerationTab) -> list[tuple[Component, str]]:
    """(component, infotext key) of the tab's scripts' infotext_fields."""
    return [
        pair
        for section in tab.sections
        if isinstance(section, ScriptsSection)
        for pair in section.paste_fields
    ]


def text_value(component: Component, text: str) -> Any:
    """An infotext value (always text) as `component` takes it."""
    if isinstance(component, gr.Checkbox):
        return text == "True"
    if isinstance(component, (gr.Slider, gr.Number)):
        number = float(text)
        return int(number) if number.is_integer() else number
    return text


def paste_handler(
    app: Services, tab: GenerationTab, checkpoint: Component | None
) -> tuple[Callable[[str], list[Any]], list[Component]]:
    """A handler from infotext text to updates of `tab`'s controls and script fields (and the checkpoint
    dropdown), and its outputs. Unreadable text leaves everything as it is and says why."""
    controls, scripted = tab.controls, script_fields(tab)
    # the "Override settings" box: the settings the infotext carries (RNG, ENSD, Eta, …)
    override = next((s for s in tab.sections if isinstance(s, OverrideSettingsSection)), None)
    outputs = [
        *controls.values(),
        *(c for c, _ in scripted),
        *([override.dropdown] if override is not None and override.dropdown is not None else []),
        *([checkpoint] if checkpoint is not None else []),
    ]

    def paste(text: str) -> list[Any]:
        unchanged = [gr.update() for _ in outputs]
        if not text or not text.strip():
            gr.Warning("No generation parameters to paste.")
            return unchanged
        try:
            pasted = read(text, app.plugins.infotext_pasted, tab.params_type)
            title = switch_checkpoint(app, pasted.fields)
        except UserError as error:
            gr.Warning(str(error))
            return unchanged
        for warning in pasted.warnings:
            gr.Warning(warning)
        result = updates(controls, pasted)
        for component, key in scripted:
            try:
                result.append(
                    text_value(component, pasted.fields[key]) if key in pasted.fields else gr.update()
                )
            except ValueError:
                gr.Warning(f"{key} not pasted: {pasted.fields[key]!r} is not a number")
                result.append(gr.update())
        if override is not None and override.dropdown is not None:
            box, problems = override.pasted(pasted.fields)
            for problem in problems:
                gr.Warning(problem)
            result.append(box)
        if checkpoint is not None:
            # A model loaded for the first time gets its hash, so its title in the list changes too.
            titles = app.models.checkpoint_titles()
            result.append(gr.Dropdown(choices=titles, value=title) if title else gr.update())
        return result

    return paste, outputs


def add_paste_button(app: Services, tab: GenerationTab, checkpoint: Component | None) -> gr.Button:
    """The ↙ button in `tab`'s toolbar: it reads the prompt box when that holds
    text, else the last generation's parameters (A1111's behaviour)."""
    with tab.toolbar:
        button = gr.Button("↙️", elem_id=f"{tab.name}_paste", min_width=40, scale=0)
    paste, outputs = paste_handler(app, tab, checkpoint)
    prompt = tab.controls["prompt"]

    def from_prompt_or_last(text: str, last: str) -> list[Any]:
        return paste(text if text and text.strip() else last)

    button.click(from_prompt_or_last, inputs=[prompt, tab.infotext], outputs=outputs)
    return button
