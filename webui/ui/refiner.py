"""The "Refiner" accordion of the txt2img and img2img tabs (A1111 1.6's layout and elem_ids): the
refiner fields of the schema as widgets. The switch itself is the engine's (engine.sampling.refiner)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.params import GenerationParams
from webui.ui.param_widgets import from_widget, widget

if TYPE_CHECKING:
    from webui.services.container import Services

FIELDS = ("refiner_checkpoint", "refiner_switch_at")  # build()'s order (its handler inputs)
NONE = "None"  # the dropdown's "no refiner" (the params' None)


class RefinerSection:
    """The accordion for one tab (a generation.Section)."""

    def __init__(self, services: Services, tab: str) -> None:
        self.services = services
        self.tab = tab
        self._controls: dict[str, gr.components.Component] = {}

    @property
    def controls(self) -> Mapping[str, gr.components.Component]:
        return self._controls

    def build(self) -> list[gr.components.Component]:
        name = self.tab
        with gr.Accordion("Refiner", open=False, elem_id=f"{name}_refiner"), gr.Row():
            checkpoint = widget(
                GenerationParams,
                "refiner_checkpoint",
                value=NONE,
                choices=[NONE, *self.services.models.checkpoint_titles()],
                # a pasted "Refiner: name [hash]" names the file the way the infotext does
                allow_custom_value=True,
                info="switch to another model in the middle of generation",
                elem_id=f"{name}_refiner_checkpoint",
            )
            switch_at = widget(
                GenerationParams,
                "refiner_switch_at",
                info="fraction of sampling steps when the switch to refiner model should happen; "
                "1=never, 0.5=switch in the middle of generation",
                elem_id=f"{name}_refiner_switch_at",
            )
        self._controls = dict(zip(FIELDS, (checkpoint, switch_at)))
        return [checkpoint, switch_at]

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        fields = {name: from_widget(GenerationParams, name, value) for name, value in zip(FIELDS, values)}
        if fields["refiner_checkpoint"] in ("", NONE):
            fields["refiner_checkpoint"] = None
        return params.replace(**fields)
