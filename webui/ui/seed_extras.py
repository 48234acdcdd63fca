"""A1111's "Extra" seed controls: Variation seed (🎲 ♻️), Variation strength and Resize seed from
width/height, shown by the "Extra" checkbox beside Seed.

Hidden means off: unticking "Extra" sets the strength and the seed resize back to 0, and a value that
turns them on (typed, or pasted from an infotext) ticks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from webui.core import infotext as infotext_text
from webui.core.params import GenerationParams
from webui.ui.param_widgets import widget

FIELDS = ("subseed", "subseed_strength", "seed_resize_from_w", "seed_resize_from_h")


@dataclass(frozen=True)
class SeedExtras:
    show: gr.Checkbox
    group: gr.Group
    subseed: gr.Number
    random_subseed: gr.Button
    reuse_subseed: gr.Button
    subseed_strength: gr.Slider
    seed_resize_from_w: gr.Slider
    seed_resize_from_h: gr.Slider

    @property
    def controls(self) -> dict[str, Any]:
        """Params field name → component, for the tab's inputs and paste."""
        return {name: getattr(self, name) for name in FIELDS}


def checkbox(name: str) -> gr.Checkbox:
    """The "Extra" checkbox, placed in the seed row."""
    return gr.Checkbox(label="Extra", value=False, elem_id=f"{name}_subseed_show", scale=0, min_width=80)


def build(name: str, params_type: type[GenerationParams], show: gr.Checkbox) -> SeedExtras:
    """The hidden group under the seed row (call where it belongs in the layout)."""
    with gr.Group(visible=False, elem_id=f"{name}_seed_extras") as group:
        with gr.Row(equal_height=True):
            subseed = widget(params_type, "subseed", elem_id=f"{name}_subseed", scale=4)
            random_subseed = gr.Button("🎲", elem_id=f"{name}_random_subseed", scale=0, min_width=40)
            reuse_subseed = gr.Button("♻️", elem_id=f"{name}_reuse_subseed", scale=0, min_width=40)
            strength = widget(params_type, "subseed_strength", elem_id=f"{name}_subseed_strength", scale=4)
        with gr.Row():
            resize_w = widget(params_type, "seed_resize_from_w", elem_id=f"{name}_seed_resize_from_w")
            resize_h = widget(params_type, "seed_resize_from_h", elem_id=f"{name}_seed_resize_from_h")
    return SeedExtras(show, group, subseed, random_subseed, reuse_subseed, strength, resize_w, resize_h)


def _variation_seed(text: str) -> Any:
    """The shown image's variation seed (♻️); unchanged when its infotext has none."""
    value = infotext_text.parse(text or "").get("Variation seed", "")
    return int(value) if value.strip().isdigit() else gr.skip()


def wire(extras: SeedExtras, shown_infotext: gr.Textbox) -> None:
    """The events (call once every component exists); `shown_infotext` is the selected image's."""

    def toggled(on: bool) -> tuple[Any, ...]:
        off = () if on else (0.0, 0, 0)
        return (gr.Group(visible=on), *(off or (gr.skip(),) * 3))

    extras.show.change(
        toggled,
        inputs=extras.show,
        outputs=[extras.group, extras.subseed_strength, extras.seed_resize_from_w, extras.seed_resize_from_h],
        queue=False,
    )

    def turned_on(strength: float, width: int, height: int) -> Any:
        return True if strength or (width and width > 0 and height and height > 0) else gr.skip()

    values = [extras.subseed_strength, extras.seed_resize_from_w, extras.seed_resize_from_h]
    for component in values:
        component.change(turned_on, inputs=values, outputs=extras.show, queue=False)
    extras.random_subseed.click(lambda: -1, outputs=extras.subseed, queue=False)
    extras.reuse_subseed.click(_variation_seed, inputs=shown_infotext, outputs=extras.subseed, queue=False)
