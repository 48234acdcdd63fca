"""txt2img's "Hires. fix" accordion (A1111's layout and elem_ids): the accordion is the on/off switch
(open = hires fix on, its checkbox in the header: ui.input_accordion), the hires fields of the schema
as widgets inside, and the line under them that says the size the second pass makes ("from 512x512 to
1024x1024").
The second pass itself is the engine's (engine.sampling.hires)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core import hires, samplers
from webui.core.params import (
    LATENT_UPSCALE_MODES,
    SAME_CHECKPOINT,
    SAME_SAMPLER,
    SAME_SCHEDULER,
    GenerationParams,
    Txt2Img,
)
from webui.ui.input_accordion import input_accordion
from webui.ui.param_widgets import from_widget, widget

if TYPE_CHECKING:
    from webui.services.container import Services

# The section's fields, in build()'s order (its handler inputs).
FIELDS = (
    "enable_hr", "hr_upscaler", "hr_second_pass_steps", "denoising_strength", "hr_scale", "hr_resize_x",
    "hr_resize_y", "hr_checkpoint_name", "hr_sampler_name", "hr_scheduler", "hr_prompt", "hr_negative_prompt",
)  # fmt: skip
SIZE_INPUTS = ("enable_hr", "width", "height", "hr_scale", "hr_resize_x", "hr_resize_y")


def upscaler_choices(services: Services) -> list[str]:
    """The latent modes, then the plain resizers and the model upscalers (A1111's order)."""
    return [*LATENT_UPSCALE_MODES, *services.extras.upscaler_names()]


def preview(enable: bool, width: float, height: float, scale: float, resize_x: float, resize_y: float) -> str:
    """A1111's "from WxH to WxH" line (empty while hires fix is off)."""
    if not enable:
        return ""
    params = Txt2Img(
        width=int(width), height=int(height), hr_scale=float(scale), hr_resize_x=int(resize_x),
        hr_resize_y=int(resize_y),
    )  # fmt: skip
    return hires.preview_text(params)


class HiresSection:
    """The accordion for the txt2img tab (a generation.Section); `connect` wires the size preview to the
    tab's width and height once the tab is built."""

    def __init__(self, services: Services, tab: str = "txt2img") -> None:
        self.services = services
        self.tab = tab
        self._controls: dict[str, gr.components.Component] = {}
        self.resolution: gr.Markdown | None = None

    @property
    def controls(self) -> Mapping[str, gr.components.Component]:
        return self._controls

    def build(self) -> list[gr.components.Component]:
        name, services = self.tab, self.services
        make_enable = partial(widget, Txt2Img, "enable_hr", elem_id=f"{name}_enable_hr")
        with input_accordion("Hires. fix", f"{name}_hr", make_enable) as enable:
            with gr.Row(elem_id=f"{name}_hires_fix_row1"):
                upscaler = widget(
                    Txt2Img, "hr_upscaler", choices=upscaler_choices(services), elem_id=f"{name}_hr_upscaler"
                )
                steps = widget(Txt2Img, "hr_second_pass_steps", elem_id=f"{name}_hires_steps")
                denoising = widget(Txt2Img, "denoising_strength", elem_id=f"{name}_denoising_strength")
            with gr.Row(elem_id=f"{name}_hires_fix_row2"):
                scale = widget(Txt2Img, "hr_scale", elem_id=f"{name}_hr_scale")
                resize_x = widget(Txt2Img, "hr_resize_x", elem_id=f"{name}_hr_resize_x")
                resize_y = widget(Txt2Img, "hr_resize_y", elem_id=f"{name}_hr_resize_y")
            with gr.Row(elem_id=f"{name}_hires_fix_row3"):
                checkpoint = widget(
                    Txt2Img,
                    "hr_checkpoint_name",
                    choices=[SAME_CHECKPOINT, *services.models.checkpoint_titles()],
                    elem_id="hr_checkpoint",
                )
                sampler = widget(
                    Txt2Img,
                    "hr_sampler_name",
                    choices=[SAME_SAMPLER, *(s.name for s in samplers.SAMPLERS)],
                    elem_id="hr_sampler",
                )
                scheduler = widget(
                    Txt2Img,
                    "hr_scheduler",
                    choices=[SAME_SCHEDULER, *(s.label for s in samplers.SCHEDULE_TYPES)],
                    elem_id="hr_scheduler",
                )
            with gr.Row(elem_id=f"{name}_hires_fix_row4"):
                prompt = widget(
                    Txt2Img,
                    "hr_prompt",
                    lines=3,
                    elem_id="hires_prompt",
                    placeholder="Prompt for hires fix pass.\n"
                    "Leave empty to use the same prompt as in first pass.",
                )
                negative = widget(
                    Txt2Img,
                    "hr_negative_prompt",
                    lines=3,
                    elem_id="hires_neg_prompt",
                    placeholder="Negative prompt for hires fix pass.\n"
                    "Leave empty to use the same negative prompt as in first pass.",
                )
            self.resolution = gr.Markdown("", elem_id="txtimg_hr_finalres")
        components = [
            enable, upscaler, steps, denoising, scale, resize_x, resize_y, checkpoint, sampler, scheduler,
            prompt, negative,
        ]  # fmt: skip
        self._controls = dict(zip(FIELDS, components))
        return components

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        fields = {name: from_widget(Txt2Img, name, value) for name, value in zip(FIELDS, values)}
        return params.replace(**fields) if isinstance(params, Txt2Img) else params

    def connect(self, controls: Mapping[str, gr.components.Component]) -> None:
        """Keep the size line up to date with the tab's width and height and the hires sizes."""
        if self.resolution is None:
            return
        inputs = [controls[name] for name in SIZE_INPUTS]
        for component in inputs:
            component.change(preview, inputs=inputs, outputs=self.resolution, queue=False)
