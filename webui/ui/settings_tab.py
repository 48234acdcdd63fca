"""The Settings tab and the quicksettings row at the top of the page, both generated from the options
table (OPTIONS plus the options extensions add).

Each option gets one component with elem_id `setting_<name>` (A1111's ids). An option named in
`quicksettings_list` lives in the row at the top and is applied as soon as it changes; the others live
in the Settings tab, grouped by section, and are applied together by "Apply settings". The checkpoint
and SD VAE quicksettings load through the job queue, so they never swap a model under a generation.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.errors import UserError
from webui.services.settings import Option

if TYPE_CHECKING:
    from webui.app import App

CHECKPOINT = "sd_model_checkpoint"
VAE = "sd_vae"

Controls = dict[str, gr.components.Component]  # option name → component


def runtime_choices(app: App) -> Mapping[str, Callable[[], list[str]]]:
    """Choices of the options whose choices come from the model folders (or the options table)."""
    return {
        CHECKPOINT: app.registry.titles,
        VAE: app.manager.vaes.choices,
        "quicksettings_list": lambda: [option.name for option in app.settings.options],
    }


def current_value(app: App, name: str) -> Any:
    """What the component of option `name` shows: the loaded checkpoint's title for the checkpoint."""
    if name == CHECKPOINT:
        return app.current_checkpoint_title() or None
    value = app.settings.get(name)
    return list(value) if isinstance(value, tuple) else value


def quicksettings_names(app: App) -> list[str]:
    """The known options of `quicksettings_list`, in its order, each once."""
    known = {option.name for option in app.settings.options}
    return list(dict.fromkeys(name for name in app.settings.get("quicksettings_list") if name in known))


def _component(app: App, option: Option, **layout: Any) -> gr.components.Component:
    value = current_value(app, option.name)
    common = {"label": option.label, "elem_id": f"setting_{option.name}", "interactive": True, **layout}
    dynamic = runtime_choices(app).get(option.name)
    choices = dynamic() if dynamic else option.choices
    if option.type is tuple:  # a list of names; any name may be typed when the choices are not known
        known = list(choices) if choices is not None else list(value)
        return gr.Dropdown(
            choices=known, value=value, multiselect=True, allow_custom_value=choices is None, **common
        )
    if choices is not None:
        return gr.Dropdown(choices=list(choices), value=value, **common)
    if option.type is bool:
        return gr.Checkbox(value=value, **common)
    if option.type in (int, float):
        step = 1 if option.type is int else 0.01
        if option.minimum is not None and option.maximum is not None:
            return gr.Slider(option.minimum, option.maximum, value=value, step=step, **common)
        return gr.Number(value=value, precision=0 if option.type is int else None, **common)
    return gr.Textbox(value=value, lines=1, **common)


def load_updates(app: App, names: Collection[str]) -> list[Any]:
    """Fresh values (and run-time choices) for the components of `names`, e.g. on page load."""
    dynamic = runtime_choices(app)
    updates: list[Any] = []
    for name in names:
        value = current_value(app, name)
        if name in dynamic:
            # An update without multiselect would check a list value as one choice.
            multiselect = {"multiselect": True} if isinstance(value, list) else {}
            updates.append(gr.Dropdown(choices=dynamic[name](), value=value, **multiselect))
        else:
            updates.append(value)
    return updates


def build_quicksettings(app: App) -> Controls:
    """The row at the top of the page: one component per quicksetting, each applied when it changes."""
    controls: Controls = {}
    with gr.Row(equal_height=True, elem_id="quicksettings"):
        for name in quicksettings_names(app):
            option = app.settings.option(name)
            controls[name] = _component(app, option, scale=4 if name == CHECKPOINT else 2, min_width=160)
            if name == CHECKPOINT:
                refresh = gr.Button("🔄", elem_id=f"refresh_{CHECKPOINT}", scale=0, min_width=40)
    for name, component in controls.items():
        _apply_at_once(app, name, component)
    if CHECKPOINT in controls:
        lists = [name for name in (CHECKPOINT, VAE) if name in controls]

        def refresh_lists() -> list[Any]:
            app.refresh_checkpoints()
            app.manager.vaes.refresh()
            return load_updates(app, lists)

        refresh.click(refresh_lists, outputs=[controls[name] for name in lists])
    return controls


def _apply_at_once(app: App, name: str, component: gr.components.Component) -> None:
    def apply(value: Any) -> Any:
        try:
            if name == CHECKPOINT:
                app.select_checkpoint(str(value))
            elif name == VAE:
                app.select_vae(str(value))
            else:
                app.update_options({name: _from_component(app, name, value)})
        except UserError as error:
            gr.Warning(str(error))
        # On failure the component goes back to what is in use (the model still loaded, the old value).
        return load_updates(app, [name])[0]

    def select(event: gr.SelectData) -> Any:
        return apply(event.value)

    # `select`/`input` fire on user changes only, not when a page load or a paste sets the value.
    if name in (CHECKPOINT, VAE):
        component.select(select, outputs=component)
    else:
        component.input(apply, inputs=component, outputs=component, trigger_mode="always_last")


def _from_component(app: App, name: str, value: Any) -> Any:
    """A component's value in the option's type (sliders give floats, multiselects lists)."""
    if app.settings.option(name).type is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def build_settings_tab(app: App, skip: Collection[str] = ()) -> Controls:
    """The Settings tab body: every option not in `skip` (the quicksettings), grouped by section, and
    "Apply settings", which validates all changes first and applies none when one is invalid.

    Only the options changed on this page are applied, so a stale page never undoes a change made
    meanwhile elsewhere (the Extensions tab, the API, another browser)."""
    with gr.Row():
        apply = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
    result = gr.Markdown(elem_id="settings_result")
    controls: Controls = {}
    options = [option for option in app.settings.options if option.name not in skip]
    for section in dict.fromkeys(option.section for option in options):
        with gr.Accordion(section, open=True, elem_id=f"settings_{_slug(section)}"):
            for option in options:
                if option.section == section:
                    controls[option.name] = _component(app, option)
    names = list(controls)
    # The values the page was loaded with (State calls this on every page load), then the applied ones.
    shown = gr.State(lambda: {name: _stored(app, name) for name in names})

    def apply_all(before: dict[str, Any], *values: Any) -> list[Any]:
        try:
            wanted = {
                name: app.settings.option(name).validate(_from_component(app, name, value))
                for name, value in zip(names, values)
                if value is not None  # a checkpoint dropdown with no model loaded yet
            }
            changes = {name: value for name, value in wanted.items() if value != before.get(name)}
            app.update_options(changes)
        except UserError as error:
            gr.Warning(f"Settings not applied: {error}")
            return [f"Nothing applied: {error}", before, *(gr.update() for _ in names)]
        summary = f"{len(changes)} settings changed" + (f": {', '.join(changes)}." if changes else ".")
        now = {name: _stored(app, name) for name in names}
        return [summary, now, *load_updates(app, names)]

    apply.click(apply_all, inputs=[shown, *controls.values()], outputs=[result, shown, *controls.values()])
    return controls


def _stored(app: App, name: str) -> Any:
    return app.current_checkpoint_title() if name == CHECKPOINT else app.settings.get(name)


def _slug(section: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in section.lower())
