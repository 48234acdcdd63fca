"""Scripts on the txt2img and img2img tabs: each always-visible script's ui() in an accordion, then the
"Script" dropdown with each selectable script's ui() shown when it is chosen. A Section (see
ui.generation): apply() writes the choice and every script's values into the params as plain data.

A script whose ui() raises is reported (log, Extensions tab, a note in its place) and left out; the
rest of the page is unaffected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.params import GenerationParams
from webui.plugins.runner import NONE_TITLE, LoadedScript, ScriptRunner
from webui.ui.generation import Section, SectionFactory

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins
    from webui.services.container import Services

Component = gr.components.Component


def section_factory(services: Services) -> SectionFactory:
    return lambda tab: ScriptsSection(services.plugins, tab)


def _slug(title: str) -> str:
    return re.sub(r"\W+", "_", title.lower()).strip("_")


class ScriptsSection(Section):
    def __init__(self, plugins: Plugins, tab: str) -> None:
        self._plugins = plugins
        self._tab = tab
        self._runner: ScriptRunner = plugins.runner(tab)
        self._selectable: list[tuple[str, int]] = []  # (title, number of inputs) in build order
        self._alwayson: list[tuple[str, int]] = []
        # (component, infotext key) of every script's infotext_fields, for pasting infotexts
        self.paste_fields: list[tuple[Component, str]] = []

    @property
    def controls(self) -> Mapping[str, Component]:
        return {}  # script values are not params fields

    def _script_ui(self, loaded: LoadedScript, title: str) -> list[Component]:
        """The script's ui() components, or [] (with a note on the page) when it fails."""
        script = loaded.script
        where = f"{type(script).__name__}.ui"
        before = self._plugins.errors.count
        answer = self._plugins.call(loaded.active, where, script.ui, self._runner.is_img2img, default=None)
        components = list(answer or [])
        wrong = [item for item in components if not isinstance(item, Component)]
        if wrong:
            self._plugins.errors.record(
                loaded.active.owner.name,
                where,
                TypeError(f"ui() must return gradio components, got {wrong[0]!r}"),
            )
            components = []
        if (answer is None and self._plugins.errors.count > before) or wrong:
            gr.Markdown(
                f"⚠️ {title} (extension {loaded.active.owner.name}) failed to build; see the Extensions tab."
            )
        self.paste_fields += [
            (component, key)
            for component, key in (script.infotext_fields or [])
            if isinstance(component, Component)
        ]
        return components

    def build(self) -> list[Component]:
        always_inputs: list[Component] = []
        for loaded in self._runner.alwayson:
            title = self._runner.title(loaded)
            with gr.Accordion(title, open=False, elem_id=f"{self._tab}_script_{_slug(title)}"):
                components = self._script_ui(loaded, title)
            self._alwayson.append((title, len(components)))
            always_inputs += components
        titles = self._runner.titles()
        dropdown = gr.Dropdown(
            label="Script",
            choices=[NONE_TITLE, *titles],
            value=NONE_TITLE,
            elem_id=f"{self._tab}_script_list",
        )
        groups: list[gr.Group] = []
        select_inputs: list[Component] = []
        for loaded, title in zip(self._runner.selectable, titles):
            with gr.Group(visible=False, elem_id=f"{self._tab}_script_{_slug(title)}") as group:
                components = self._script_ui(loaded, title)
            groups.append(group)
            self._selectable.append((title, len(components)))
            select_inputs += components

        def show(choice: str) -> list[Any]:
            return [gr.Group(visible=choice == title) for title in titles]

        if groups:
            dropdown.change(show, inputs=dropdown, outputs=groups, queue=False)
        return [dropdown, *select_inputs, *always_inputs]

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        choice, rest = values[0], list(values[1:])
        script_args: tuple[Any, ...] = ()
        for title, count in self._selectable:
            if title == choice:
                script_args = tuple(rest[:count])
            rest = rest[count:]
        alwayson = []
        for title, count in self._alwayson:
            alwayson.append((title, tuple(rest[:count])))
            rest = rest[count:]
        chosen = choice if choice and choice != NONE_TITLE else None
        return params.replace(
            script_name=chosen, script_args=script_args if chosen else (), alwayson_scripts=tuple(alwayson)
        )
