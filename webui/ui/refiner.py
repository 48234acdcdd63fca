"""The "Refiner" accordion of the txt2img and img2img tabs (A1111 1.6's layout and elem_ids): the
accordion is the on/off switch (open = refiner on, its checkbox in the header: ui.input_accordion), the
refiner fields of the schema as widgets inside. The schema has no "enable" field (A1111's API neither):
off means no refiner checkpoint, so a closed accordion queues none, and a checkpoint set by paste or
"send to" opens the accordion ("None" closes it). The switch itself is the engine's
(engine.sampling.refiner)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.params import GenerationParams
from webui.ui.input_accordion import input_accordion
from webui.ui.param_widgets import from_widget, widget

if TYPE_CHECKING:
    from webui.services.container import Services

FIELDS = ("refiner_checkpoint", "refiner_switch_at")  # build()'s order (its handler inputs, then "enabled")
NONE = "None"  # the dropdown's "no refiner" (the params' None)
# A chosen checkpoint ticks the header checkbox (which opens the accordion); "None" unticks it.
TICK_FOR_CHECKPOINT = f"(name) => Boolean(name) && name !== {NONE!r}"


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
        make_enable = partial(gr.Checkbox, False, label="Refiner", elem_id=f"{name}_enable_refiner")
        with input_accordion("Refiner", f"{name}_refiner", make_enable) as enable, gr.Row():
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
        checkpoint.change(None, checkpoint, enable, js=TICK_FOR_CHECKPOINT, queue=False)
        self._controls = dict(zip(FIELDS, (checkpoint, switch_at)))
        return [checkpoint, switch_at, enable]

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        """`values`: the checkpoint, "switch at" and whether the accordion is on (off: no refiner)."""
        *field_values, enabled = values
        fields = {name: from_widget(GenerationParams, name, v) for name, v in zip(FIELDS, field_values)}
        if not enabled or fields["refiner_checkpoint"] in ("", NONE):
            fields["refiner_checkpoint"] = None
        return params.replace(**fields)
