"""ControlNet in the UI, as sd-webui-controlnet shows it: a "ControlNet" accordion in txt2img and img2img
with one tab per unit (enable, image, preprocessor, model, weight, control steps, modes, sliders that
follow the preprocessor, a 💥 preview of the map), and a "ControlNet" tab: a preprocessor playground and
the model list. In img2img a unit without its own image uses the img2img input. No generation here: the
section only puts ControlUnits into the params."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from webui.core.control_unit import CONTROL_MODES, CONTROL_RESIZE_MODES, ControlUnit
from webui.core.errors import UserError
from webui.core.params import GenerationParams
from webui.services.controlnet import ControlNetService, Preprocess
from webui.ui.errors import user_error
from webui.ui.generation import Section, SectionFactory
from webui.ui.owners import owner_of

if TYPE_CHECKING:
    from webui.services.container import Services

Component = gr.components.Component
NO_MODEL = "None"
# one unit's inputs, in the order apply() reads them
UNIT_FIELDS = (
    "enabled",
    "image",
    "module",
    "model",
    "weight",
    "guidance_start",
    "guidance_end",
    "pixel_perfect",
    "processor_res",
    "threshold_a",
    "threshold_b",
    "control_mode",
    "resize_mode",
)


def model_choices(library: ControlNetService) -> list[str]:
    return [NO_MODEL, *library.titles()]


def slider_updates(module: str) -> list[Any]:
    """The resolution and threshold sliders for `module`: shown with its labels and ranges, or hidden."""
    pre = ControlNetService.find(module)
    updates = []
    for slider in (pre.resolution, pre.threshold_a, pre.threshold_b):
        if slider is None:
            updates.append(gr.Slider(visible=False))
        else:
            updates.append(
                gr.Slider(
                    label=slider.label,
                    minimum=slider.minimum,
                    maximum=slider.maximum,
                    step=slider.step,
                    value=slider.default,
                    visible=True,
                )
            )
    return updates


def preview(
    library: ControlNetService,
    owner: str | None,
    image: Image.Image | None,
    module: str,
    resolution: float,
    a: float,
    b: float,
) -> Image.Image:
    """The preprocessed map (💥); gr.Error with the problem (e.g. the annotator file that is missing)."""
    if image is None:
        raise user_error("Upload an image first", "ControlNet preview")
    try:
        done = library.submit(Preprocess(module, (image,), int(resolution), float(a), float(b)), owner).wait()
    except UserError as error:
        raise user_error(error, "ControlNet preview") from error
    if not done.images:
        raise user_error("Interrupted", "ControlNet preview")
    return done.images[0]


def _build_unit(library: ControlNetService, tab: str, index: int) -> list[Component]:
    """One unit's controls; returns its inputs in UNIT_FIELDS order."""
    prefix = f"{tab}_controlnet_unit_{index}"
    resolution = ControlNetService.resolution
    with gr.Row():
        image = gr.Image(
            label="Single Image", type="pil", sources=["upload", "clipboard"], elem_id=f"{prefix}_image"
        )
        map_preview = gr.Image(
            label="Preprocessor Preview", type="pil", interactive=False, elem_id=f"{prefix}_preview"
        )
    if tab == "img2img":
        gr.Markdown("Without an image here, the unit uses the img2img input.")
    with gr.Row():
        enabled = gr.Checkbox(label="Enable", value=False, elem_id=f"{prefix}_enable")
        pixel_perfect = gr.Checkbox(label="Pixel Perfect", value=False, elem_id=f"{prefix}_pixel_perfect")
    with gr.Row(equal_height=True):
        module = gr.Dropdown(
            label="Preprocessor",
            choices=ControlNetService.module_list(alias_names=True),
            value="none",
            elem_id=f"{prefix}_module",
        )
        run_preview = gr.Button("💥", elem_id=f"{prefix}_run_preview", scale=0, min_width=40)
        model = gr.Dropdown(
            label="Model", choices=model_choices(library), value=NO_MODEL, elem_id=f"{prefix}_model"
        )
        refresh = gr.Button("🔄", elem_id=f"{prefix}_refresh_models", scale=0, min_width=40)
    with gr.Row():
        weight = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="Control Weight", elem_id=f"{prefix}_weight")
        start = gr.Slider(
            0.0, 1.0, value=0.0, step=0.01, label="Starting Control Step", elem_id=f"{prefix}_start"
        )
        end = gr.Slider(0.0, 1.0, value=1.0, step=0.01, label="Ending Control Step", elem_id=f"{prefix}_end")
    with gr.Row():
        processor_res = gr.Slider(
            resolution.minimum,
            resolution.maximum,
            value=resolution.default,
            step=1,
            label=resolution.label,
            visible=False,
            elem_id=f"{prefix}_processor_res",
        )
        threshold_a = gr.Slider(
            0, 255, value=0, label="Threshold A", visible=False, elem_id=f"{prefix}_threshold_a"
        )
        threshold_b = gr.Slider(
            0, 255, value=0, label="Threshold B", visible=False, elem_id=f"{prefix}_threshold_b"
        )
    control_mode = gr.Radio(
        list(CONTROL_MODES), value=CONTROL_MODES[0], label="Control Mode", elem_id=f"{prefix}_control_mode"
    )
    resize_mode = gr.Radio(
        list(CONTROL_RESIZE_MODES),
        value="Crop and Resize",
        label="Resize Mode",
        elem_id=f"{prefix}_resize_mode",
    )
    sliders = [processor_res, threshold_a, threshold_b]
    module.change(slider_updates, inputs=module, outputs=sliders, queue=False)
    refresh.click(lambda: gr.Dropdown(choices=_refreshed(library)), outputs=model, queue=False)

    def show_preview(request: gr.Request, *values: Any) -> Image.Image:
        return preview(library, owner_of(request), *values)

    run_preview.click(show_preview, inputs=[image, module, *sliders], outputs=map_preview)
    return [
        enabled,
        image,
        module,
        model,
        weight,
        start,
        end,
        pixel_perfect,
        *sliders,
        control_mode,
        resize_mode,
    ]


def _refreshed(library: ControlNetService) -> list[str]:
    return [NO_MODEL, *library.refresh()]


def unit_from_values(values: Sequence[Any], tab: str) -> ControlUnit:
    """A ControlUnit from one unit's input values (UNIT_FIELDS order)."""
    value = dict(zip(UNIT_FIELDS, values))
    image = value.pop("image")
    return ControlUnit(
        enabled=bool(value["enabled"]),
        module=str(value["module"]),
        model=str(value["model"] or NO_MODEL),
        weight=float(value["weight"]),
        image=image,
        use_img2img_input=tab == "img2img" and image is None,
        resize_mode=str(value["resize_mode"]),
        processor_res=int(value["processor_res"]),
        threshold_a=float(value["threshold_a"]),
        threshold_b=float(value["threshold_b"]),
        guidance_start=float(value["guidance_start"]),
        guidance_end=float(value["guidance_end"]),
        pixel_perfect=bool(value["pixel_perfect"]),
        control_mode=str(value["control_mode"]),
    )


class ControlNetSection(Section):
    """The "ControlNet" accordion of one generation tab."""

    def __init__(self, library: ControlNetService, tab: str, unit_count: int) -> None:
        """`unit_count`: the "control_net_unit_count" setting (sd-webui-controlnet's default: 3)."""
        self.library = library
        self.tab = tab
        self.unit_count = unit_count

    def build(self) -> list[Component]:
        inputs: list[Component] = []
        with gr.Accordion("ControlNet", open=False, elem_id=f"{self.tab}_controlnet"):
            with gr.Tabs():
                for index in range(self.unit_count):
                    with gr.Tab(f"ControlNet Unit {index}"):
                        inputs += _build_unit(self.library, self.tab, index)
        return inputs

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        size = len(UNIT_FIELDS)
        units = tuple(unit_from_values(values[i : i + size], self.tab) for i in range(0, len(values), size))
        return params.replace(control_units=units) if any(unit.enabled for unit in units) else params

    @property
    def controls(self) -> Mapping[str, Component]:
        return {}  # units are not single params fields: paste leaves them alone


def section_factory(services: Services) -> SectionFactory:
    count = services.settings.get("control_net_unit_count")
    return lambda tab: ControlNetSection(services.controlnet, tab, count)


def build_tab(services: Services) -> None:
    """The "ControlNet" tab: try a preprocessor on an image, and see the models found."""
    library = services.controlnet
    resolution = ControlNetService.resolution
    with gr.Row():
        with gr.Column():
            image = gr.Image(
                label="Image", type="pil", sources=["upload", "clipboard"], elem_id="controlnet_tab_image"
            )
            module = gr.Dropdown(
                label="Preprocessor",
                choices=ControlNetService.module_list(alias_names=True),
                value="canny",
                elem_id="controlnet_tab_module",
            )
            processor_res = gr.Slider(
                resolution.minimum,
                resolution.maximum,
                value=resolution.default,
                step=1,
                label=resolution.label,
                elem_id="controlnet_tab_processor_res",
            )
            threshold_a = gr.Slider(
                1, 255, value=100, label="Canny Low Threshold", elem_id="controlnet_tab_threshold_a"
            )
            threshold_b = gr.Slider(
                1, 255, value=200, label="Canny High Threshold", elem_id="controlnet_tab_threshold_b"
            )
            run = gr.Button("Preview", variant="primary", elem_id="controlnet_tab_run")
        with gr.Column():
            result = gr.Image(
                label="Preprocessor Preview", type="pil", interactive=False, elem_id="controlnet_tab_result"
            )
    with gr.Row(equal_height=True):
        models = gr.Dataframe(
            headers=["ControlNet model"],
            value=[[title] for title in library.titles()],
            interactive=False,
            elem_id="controlnet_tab_models",
            scale=4,
        )
        refresh = gr.Button("🔄 Refresh models", elem_id="controlnet_tab_refresh", scale=0)
    sliders = [processor_res, threshold_a, threshold_b]
    module.change(slider_updates, inputs=module, outputs=sliders, queue=False)

    def show_preview(request: gr.Request, *values: Any) -> Image.Image:
        return preview(library, owner_of(request), *values)

    run.click(show_preview, inputs=[image, module, *sliders], outputs=result)
    refresh.click(lambda: [[title] for title in _refreshed(library)[1:]], outputs=models, queue=False)
