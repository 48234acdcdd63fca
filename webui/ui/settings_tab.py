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
from webui.services.option_table import Option
from webui.ui.model_status import build_model_status

if TYPE_CHECKING:
    from webui.services.container import Services

CHECKPOINT = "sd_model_checkpoint"
VAE = "sd_vae"

Controls = dict[str, gr.components.Component]  # option name → component


def runtime_choices(services: Services) -> Mapping[str, Callable[[], list[str]]]:
    """Choices of the options whose choices come from the model folders (or the options table)."""
    return {
        CHECKPOINT: services.models.checkpoint_titles,
        VAE: services.models.vae_choices,
        "quicksettings_list": lambda: [option.name for option in services.settings.options],
    }


def current_value(services: Services, name: str) -> Any:
    """What the component of option `name` shows: the loaded checkpoint's title for the checkpoint."""
    if name == CHECKPOINT:
        return services.models.current_title() or None
    value = services.settings.get(name)
    return list(value) if isinstance(value, tuple) else value


# Options each generation tab shows as a parameter slider of its own: a second slider at the top would show
# another value after a paste (the setting is the sliders' default, in the Settings tab).
IN_THE_TABS = frozenset({"CLIP_stop_at_last_layers"})


def quicksettings_names(services: Services) -> list[str]:
    """The known options of `quicksettings_list`, in its order, each once (not those IN_THE_TABS)."""
    known = {option.name for option in services.settings.options} - IN_THE_TABS
    return list(dict.fromkeys(name for name in services.settings.get("quicksettings_list") if name in known))


def _component(services: Services, option: Option, **layout: Any) -> gr.components.Component:
    value = current_value(services, option.name)
    common = {"label": option.label, "elem_id": f"setting_{option.name}", "interactive": True, **layout}
    dynamic = runtime_choices(services).get(option.name)
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


def load_updates(services: Services, names: Collection[str]) -> list[Any]:
    """Fresh values (and run-time choices) for the components of `names`, e.g. on page load."""
    dynamic = runtime_choices(services)
    updates: list[Any] = []
    for name in names:
        value = current_value(services, name)
        if name in dynamic:
            # An update without multiselect would check a list value as one choice.
            multiselect = {"multiselect": True} if isinstance(value, list) else {}
            updates.append(gr.Dropdown(choices=dynamic[name](), value=value, **multiselect))
        else:
            updates.append(value)
    return updates


def build_quicksettings(services: Services) -> Controls:
    """The row at the top of the page: one component per quicksetting, each applied when it changes."""
    controls: Controls = {}
    with gr.Row(equal_height=True, elem_id="quicksettings"):
        for name in quicksettings_names(services):
            option = services.settings.option(name)
            controls[name] = _component(services, option, scale=4 if name == CHECKPOINT else 2, min_width=160)
            if name == CHECKPOINT:
                refresh = gr.Button("🔄", elem_id=f"refresh_{CHECKPOINT}", scale=0, min_width=40)
    for name, component in controls.items():
        _apply_at_once(services, name, component)
    if CHECKPOINT in controls:
        lists = [name for name in (CHECKPOINT, VAE) if name in controls]

        def refresh_lists() -> list[Any]:
            services.models.refresh_checkpoints()
            services.models.refresh_vaes()
            return load_updates(services, lists)

        refresh.click(refresh_lists, outputs=[controls[name] for name in lists])
    # the start-up checkpoint loads in the background: its progress, then the dropdown shows it
    shown = [name for name in (CHECKPOINT,) if name in controls]
    build_model_status(services, lambda: load_updates(services, shown), [controls[name] for name in shown])
    return controls


def _apply_at_once(services: Services, name: str, component: gr.components.Component) -> None:
    def apply(value: Any) -> Any:
        try:
            if name == CHECKPOINT:
                services.models.select_checkpoint(str(value))
            elif name == VAE:
                services.models.select_vae(str(value))
            else:
                services.models.update_options({name: _from_component(services, name, value)})
        except UserError as error:
            gr.Warning(str(error))
        # On failure the component goes back to what is in use (the model still loaded, the old value).
        return load_updates(services, [name])[0]

    def select(event: gr.SelectData) -> Any:
        return apply(event.value)

    # `select`/`input` fire on user changes only, not when a page load or a paste sets the value.
    if name in (CHECKPOINT, VAE):
        component.select(select, outputs=component)
    else:
        component.input(apply, inputs=component, outputs=component, trigger_mode="always_last")


def _from_component(services: Services, name: str, value: Any) -> Any:
    """A component's value in the option's type (sliders give floats, multiselects lists)."""
    if services.settings.option(name).type is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def build_settings_tab(services: Services, skip: Collection[str] = ()) -> Controls:
    """The Settings tab body: every option not in `skip` (the quicksettings), grouped by section, and
    "Apply settings", which validates all changes first and applies none when one is invalid.

    Only the options changed on this page are applied, so a stale page never undoes a change made
    meanwhile elsewhere (the Extensions tab, the API, another browser)."""
    with gr.Row():
        apply = gr.Button("Apply settings", variant="primary", elem_id="settings_submit")
        # filtered in the page by javascript/settings_search.js
        gr.Textbox(
            placeholder="Search settings…", show_label=False, elem_id="settings_search", container=False
        )
        # A1111's "Show all pages": clears the search and unfolds every section (settings_search.js)
        gr.Button("Show all pages", elem_id="settings_show_all_pages", scale=0, min_width=140)
    result = gr.Markdown(elem_id="settings_result")
    controls: Controls = {}
    options = [option for option in services.settings.options if option.name not in skip]
    for section in dict.fromkeys(option.section for option in options):
        with gr.Accordion(section, open=True, elem_id=f"settings_{_slug(section)}"):
            for option in options:
                if option.section == section:
                    controls[option.name] = _component(services, option)
    names = list(controls)
    # The values the page was loaded with (State calls this on every page load), then the applied ones.
    shown = gr.State(lambda: {name: _stored(services, name) for name in names})

    def apply_all(before: dict[str, Any], *values: Any) -> list[Any]:
        try:
            wanted = {
                name: services.settings.option(name).validate(_from_component(services, name, value))
                for name, value in zip(names, values)
                if value is not None  # a checkpoint dropdown with no model loaded yet
            }
            changes = {name: value for name, value in wanted.items() if value != before.get(name)}
            services.models.update_options(changes)
        except UserError as error:
            gr.Warning(f"Settings not applied: {error}")
            return [f"Nothing applied: {error}", before, *(gr.update() for _ in names)]
        labels = [services.settings.option(name).label for name in changes]  # what the page shows
        summary = f"{len(changes)} settings changed" + (f": {'; '.join(labels)}." if changes else ".")
        now = {name: _stored(services, name) for name in names}
        return [summary, now, *load_updates(services, names)]

    apply.click(apply_all, inputs=[shown, *controls.values()], outputs=[result, shown, *controls.values()])
    _reload_ui_button(services)
    return controls


# What "Reload UI" does here, unlike A1111, which rebuilds its gradio app in the same process: the page
# layout is built once when the server starts (gradio serves that one app), so it re-reads what changes on
# disk and reloads the page, whose load events fill in the model lists and the settings' current values.
RELOAD_UI_NOTE = (
    "**Reload UI** re-reads the model folders (checkpoints, VAEs, LoRAs, embeddings, ControlNet models) and "
    "reloads the page: the checkpoint and VAE lists and the LoRA cards show new files at once, a ControlNet "
    "unit's model list after its 🔄. The page's layout and the extensions are set up when the server "
    "starts: restart the server after installing an extension or changing code."
)


def _reload_ui_button(services: Services) -> None:
    """A1111's "Reload UI" at the bottom of Settings (its elem_id)."""
    button = gr.Button("Reload UI", elem_id="settings_restart_gradio")
    gr.Markdown(RELOAD_UI_NOTE, elem_id="settings_restart_gradio_note")
    button.click(lambda: rescan_model_folders(services), queue=False).then(
        None, js="() => { location.reload(); }"
    )


def rescan_model_folders(services: Services) -> None:
    """List every model folder again (files added or removed since the lists were made)."""
    services.models.refresh_checkpoints()
    services.models.refresh_vaes()
    services.models.refresh_loras()
    services.models.embeddings()
    services.controlnet.refresh()


def _stored(services: Services, name: str) -> Any:
    return services.models.current_title() if name == CHECKPOINT else services.settings.get(name)


def _slug(section: str) -> str:
    return "".join(char if char.isalnum() else "_" for char in section.lower())
