"""The "Override settings" box of the generation tabs (A1111's elem_id `<tab>_override_settings`): hidden
until a paste offers settings the infotext carries (services.override_settings); the next Generate runs
with the entries left in it, for that job only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.params import GenerationParams
from webui.services.override_settings import OverrideSettings
from webui.ui.generation import SectionFactory

if TYPE_CHECKING:
    from webui.services.container import Services


class OverrideSettingsSection:
    """A generation-tab section (ui.generation) whose values are options, not params."""

    def __init__(self, overrides: OverrideSettings, tab: str) -> None:
        self.overrides = overrides
        self.tab = tab
        self.dropdown: gr.Dropdown | None = None

    def build(self) -> list[gr.components.Component]:
        with gr.Row(elem_id=f"{self.tab}_override_settings_row"):
            self.dropdown = gr.Dropdown(
                [],
                value=[],
                label="Override settings",
                multiselect=True,
                visible=False,
                elem_id=f"{self.tab}_override_settings",
            )
        # removing the last entry hides the box again, as in A1111
        self.dropdown.change(
            lambda entries: gr.Dropdown(visible=bool(entries)),
            inputs=self.dropdown,
            outputs=self.dropdown,
            queue=False,
        )
        return [self.dropdown]

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        return params

    @property
    def controls(self) -> Mapping[str, gr.components.Component]:
        return {}

    def override_settings(self, values: Sequence[Any]) -> dict[str, Any]:
        """The options the box's entries set, for the job the tab submits."""
        return self.overrides.options(list(values[0] or []))

    def pasted(self, fields: Mapping[str, str]) -> tuple[Any, list[str]]:
        """The box's update for a pasted infotext's fields, and what could not be offered."""
        offered = self.overrides.offered(fields)
        entries = offered.entries
        return gr.Dropdown(choices=entries, value=entries, visible=bool(entries)), offered.warnings


def section_factory(app: Services) -> SectionFactory:
    overrides = OverrideSettings(app.settings, app.models.check_options)
    return lambda tab: OverrideSettingsSection(overrides, tab)
