"""The img2img tab: the shared generation layout with the input-image section on top.

As in A1111, the active sub-tab decides the mode: img2img (an uploaded image), Sketch (colours drawn
over it), Inpaint (the mask painted on it), Inpaint sketch (the strokes are the mask *and* new colours),
Inpaint upload (image + separate mask file) and Batch (every image of a folder, masks from another).
The section turns the tab's Txt2Img into an Img2Img; in Batch mode it queues one job per file instead
(webui.ui.img2img_batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

import gradio as gr
from PIL import Image, ImageChops, ImageFilter, UnidentifiedImageError

from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Img2Img
from webui.services.batch import scaled_size
from webui.ui.generation import GenerationTab, SectionFactory, build_generation_tab
from webui.ui.img2img_batch import BatchRun, batch_folders
from webui.ui.param_widgets import widget
from webui.ui.refiner import RefinerSection

if TYPE_CHECKING:
    from webui.services.container import Services

# Sub-tab id → label (A1111's). The ids are the values of the mode state and of "Send to" targets.
MODES: Mapping[str, str] = MappingProxyType(
    {
        "img2img": "img2img",
        "sketch": "Sketch",
        "inpaint": "Inpaint",
        "inpaint_sketch": "Inpaint sketch",
        "inpaint_upload": "Inpaint upload",
        "batch": "Batch",
    }
)
# Where the inpaint controls are shown (Batch too: its mask folder makes it an inpaint batch).
INPAINT_MODES = frozenset({"inpaint", "inpaint_sketch", "inpaint_upload", "batch"})
RESIZE_TO, RESIZE_BY = "to", "by"
# Colours offered for sketching; any other can be picked.
SKETCH_COLOURS = ["#000000", "#ffffff", "#cc3232", "#32cc70", "#3270cc", "#f0d020"]
# A fixed radius (image pixels): gradio's "auto" size comes out as nothing in an editor that was hidden
# (another tab) when its image arrived, as after "Send to inpaint".
BRUSH_SIZE = 12
MASK_BRUSH = gr.Brush(
    colors=["#ffffff"], default_color="#ffffff", color_mode="fixed", default_size=BRUSH_SIZE
)
SKETCH_BRUSH = gr.Brush(colors=SKETCH_COLOURS, default_size=BRUSH_SIZE)


def _image_input(label: str, elem_id: str, **options: Any) -> gr.Image:
    """An upload box for an input image: kept as uploaded (16-bit, CMYK and alpha are the engine's to
    handle), and a file that is no image is refused at once with a message saying so."""
    image = gr.Image(
        label=label,
        type="pil",
        image_mode=None,
        format="png",
        elem_id=elem_id,
        sources=("upload", "clipboard"),
        **options,
    )

    def check(payload: Mapping[str, Any] | None) -> Any:
        # Raw payload (preprocess=False): gradio's own preprocessing would fail with a bare "Error".
        path = payload.get("path") if isinstance(payload, Mapping) else None
        if path is None:
            return gr.skip()
        try:
            Image.open(path).close()
        except UnidentifiedImageError:
            gr.Warning(f"{label}: the uploaded file is not an image")
            return None
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            gr.Warning(f"{label}: the image cannot be read ({error})")
            return None
        return gr.skip()

    image.upload(check, inputs=image, outputs=image, preprocess=False)  # queued: toasts need the queue
    return image


# ---- pure image helpers (no gradio) ----


def mask_from_layers(layers: Sequence[Image.Image], size: tuple[int, int]) -> Image.Image:
    """White wherever a layer has paint (alpha > 0), black elsewhere: the mask painted in an editor."""
    mask = Image.new("L", size, 0)
    for layer in layers:
        alpha = layer.convert("RGBA").getchannel("A")
        if alpha.size != size:
            alpha = alpha.resize(size, Image.Resampling.NEAREST)
        mask = ImageChops.lighter(mask, alpha.point(lambda value: 255 if value else 0))
    return mask


def sketch_over(background: Image.Image, drawn: Image.Image, mask: Image.Image, blur: int) -> Image.Image:
    """A1111's Inpaint sketch image: the drawn colours, their edges softened by the mask blur, over the
    original image."""
    soften = ImageFilter.GaussianBlur(blur)
    base = background.convert("RGB")
    return Image.composite(drawn.convert("RGB").filter(soften), base, mask.filter(soften))


def to_img2img(params: GenerationParams, **fields: Any) -> Img2Img:
    """`params` (with whatever other sections set) as an Img2Img with the given img2img fields."""
    return Img2Img.from_txt2img(params, **fields)


# ---- the section ----


class Img2ImgValues(NamedTuple):
    """The section's inputs, in build()'s order."""

    mode: str
    image: Image.Image | None
    sketch: dict[str, Any] | None
    inpaint: dict[str, Any] | None
    inpaint_sketch: dict[str, Any] | None
    upload_image: Image.Image | None
    upload_mask: Image.Image | None
    batch_input: str
    batch_output: str
    batch_masks: str
    scale_tab: str
    scale: float
    resize_mode: int
    denoising_strength: float
    mask_blur: float
    inpainting_mask_invert: int
    inpainting_fill: int
    inpaint_full_res: int
    inpaint_full_res_padding: float


class Img2ImgSection:
    """The input images, resize and inpaint controls of the img2img tab (a generation.Section)."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._controls: dict[str, gr.components.Component] = {}
        self._images: dict[str, gr.components.Component] = {}
        self._tabs: dict[str, gr.Tab] = {}

    # Section protocol

    def build(self) -> list[gr.components.Component]:
        mode = gr.State("img2img")
        inputs = self._build_image_tabs(mode)
        scale_tab = gr.State(RESIZE_TO)
        with gr.Tabs(elem_id="img2img_resize_tabs"):
            with gr.Tab("Resize to", id=RESIZE_TO, elem_id="img2img_tab_resize_to") as resize_to:
                gr.Markdown("The output size is *Width* × *Height* below.")
            with gr.Tab("Resize by", id=RESIZE_BY, elem_id="img2img_tab_resize_by") as resize_by:
                scale = gr.Slider(0.05, 4.0, value=1.0, step=0.05, label="Scale", elem_id="img2img_scale")
                size_note = gr.Markdown(elem_id="img2img_scale_note")
        resize_to.select(lambda: RESIZE_TO, outputs=scale_tab, queue=False)
        resize_by.select(lambda: RESIZE_BY, outputs=scale_tab, queue=False)
        # Labels, limits and defaults from the schema (webui/core/params.py); elem_ids are A1111's.
        resize_mode = widget(Img2Img, "resize_mode", elem_id="resize_mode")
        denoising = widget(Img2Img, "denoising_strength", elem_id="img2img_denoising_strength")
        with gr.Group(visible=False, elem_id="img2img_inpaint_controls") as self._inpaint_controls:
            mask_blur = widget(Img2Img, "mask_blur", elem_id="img2img_mask_blur")
            mask_mode = widget(Img2Img, "inpainting_mask_invert", elem_id="img2img_mask_mode")
            fill = widget(Img2Img, "inpainting_fill", elem_id="img2img_inpainting_fill")
            with gr.Row():
                area = widget(Img2Img, "inpaint_full_res", elem_id="img2img_inpaint_full_res")
                padding = widget(
                    Img2Img, "inpaint_full_res_padding", elem_id="img2img_inpaint_full_res_padding"
                )
        self._mode = mode
        for name, tab in self._tabs.items():
            tab.select(
                lambda name=name: (name, gr.Group(visible=name in INPAINT_MODES)),
                outputs=[mode, self._inpaint_controls],
                queue=False,
            )
        self._controls = {
            "resize_mode": resize_mode, "denoising_strength": denoising, "mask_blur": mask_blur,
            "inpainting_mask_invert": mask_mode, "inpainting_fill": fill, "inpaint_full_res": area,
            "inpaint_full_res_padding": padding,
        }  # fmt: skip
        all_inputs = [
            mode,
            *inputs,
            scale_tab,
            scale,
            resize_mode,
            denoising,
            mask_blur,
            mask_mode,
            fill,
            area,
            padding,
        ]
        for trigger in (scale.change, resize_by.select):
            trigger(
                lambda *v: scale_note(Img2ImgValues(*v)), inputs=all_inputs, outputs=size_note, queue=False
            )
        return all_inputs

    def apply(self, params: GenerationParams, values: Sequence[Any]) -> GenerationParams:
        v = Img2ImgValues(*values)
        fields: dict[str, Any] = {
            "resize_mode": int(v.resize_mode),
            "denoising_strength": float(v.denoising_strength),
            "mask_blur": int(v.mask_blur),
            "inpainting_mask_invert": int(v.inpainting_mask_invert),
            "inpainting_fill": int(v.inpainting_fill),
            "inpaint_full_res": bool(v.inpaint_full_res),
            "inpaint_full_res_padding": int(v.inpaint_full_res_padding),
        }
        if v.mode == "batch":  # the images come per file, in generate_instead()
            return to_img2img(params, **fields)
        image, mask = mode_inputs(v)
        if v.scale_tab == RESIZE_BY:
            fields["width"], fields["height"] = scaled_size(image.size, float(v.scale))
        return to_img2img(params, init_images=(image,), mask=mask, **fields)

    @property
    def controls(self) -> Mapping[str, gr.components.Component]:
        """Params field → component. The radios' values are the params' integers (inpaint_full_res: 0/1)."""
        return self._controls

    # generation.Runner: Batch runs one queued job per input file

    def generate_instead(
        self, params: GenerationParams, values: Sequence[Any], owner: str | None = None
    ) -> BatchRun | None:
        v = Img2ImgValues(*values)
        if v.mode != "batch" or not isinstance(params, Img2Img):
            return None
        folders = batch_folders(self._services, v.batch_input, v.batch_output, v.batch_masks)
        scale = float(v.scale) if v.scale_tab == RESIZE_BY else None
        return BatchRun(self._services, params, folders, scale, owner)

    # for send_to

    def send_image_to(
        self, sub_tab: str
    ) -> tuple[gr.components.Component, tuple[tuple[gr.components.Component, Any], ...]]:
        """The input a sent picture goes to on `sub_tab`, and the (component, update) pairs that switch to
        it."""
        if sub_tab not in self._images:
            raise ValueError(
                f"no image input on img2img sub-tab {sub_tab!r}; choose from {', '.join(self._images)}"
            )
        # gr.update, not gr.Tabs(...): a component made here, at build time, would be rendered on the page
        switches = (
            (self._sub_tabs, gr.update(selected=sub_tab)),
            (self._mode, sub_tab),
            (self._inpaint_controls, gr.update(visible=sub_tab in INPAINT_MODES)),
        )
        return self._images[sub_tab], switches

    # building blocks

    def _build_image_tabs(self, mode: gr.State) -> list[gr.components.Component]:
        def editor(elem_id: str, label: str, brush: gr.Brush) -> gr.ImageEditor:
            # PNG keeps the pixels exact; crop/resize would make the layers disagree with the image.
            return gr.ImageEditor(
                type="pil",
                image_mode="RGBA",
                label=label,
                elem_id=elem_id,
                format="png",
                brush=brush,
                layers=False,
                transforms=(),
                sources=("upload", "clipboard"),
                height=480,
            )

        with gr.Tabs(elem_id="mode_img2img") as self._sub_tabs:
            with gr.Tab(MODES["img2img"], id="img2img", elem_id="img2img_img2img_tab") as img2img_tab:
                image = _image_input("Image for img2img", "img2img_image", height=480)
            with gr.Tab(MODES["sketch"], id="sketch", elem_id="img2img_img2img_sketch_tab") as sketch_tab:
                sketch = editor("img2img_sketch", "Image for img2img", SKETCH_BRUSH)
            with gr.Tab(MODES["inpaint"], id="inpaint", elem_id="img2img_inpaint_tab") as inpaint_tab:
                inpaint = editor("img2maskimg", "Image for inpainting with mask", MASK_BRUSH)
            with gr.Tab(
                MODES["inpaint_sketch"], id="inpaint_sketch", elem_id="img2img_inpaint_sketch_tab"
            ) as paint_tab:
                inpaint_sketch = editor("inpaint_sketch", "Color sketch inpainting", SKETCH_BRUSH)
            with gr.Tab(
                MODES["inpaint_upload"], id="inpaint_upload", elem_id="img2img_inpaint_upload_tab"
            ) as upload_tab:
                upload_image = _image_input("Image for img2img", "img_inpaint_base")
                upload_mask = _image_input("Mask", "img_inpaint_mask")
            with gr.Tab(MODES["batch"], id="batch", elem_id="img2img_batch_tab") as batch_tab:
                gr.Markdown(
                    "Process every image of a folder. Relative paths are inside the data folder. Without an "
                    "output folder the images go to the usual outputs. With a mask folder it is an inpaint "
                    "batch: each image takes the mask of the same name (or the only mask there is)."
                )
                batch_input = gr.Textbox(label="Input directory", elem_id="img2img_batch_input_dir")
                batch_output = gr.Textbox(label="Output directory", elem_id="img2img_batch_output_dir")
                batch_masks = gr.Textbox(
                    label="Inpaint batch mask directory (required for inpaint batch processing only)",
                    elem_id="img2img_batch_inpaint_mask_dir",
                )
        tabs = {
            "img2img": img2img_tab, "sketch": sketch_tab, "inpaint": inpaint_tab, "inpaint_sketch": paint_tab,
            "inpaint_upload": upload_tab, "batch": batch_tab,
        }  # fmt: skip
        self._images = {
            "img2img": image, "sketch": sketch, "inpaint": inpaint, "inpaint_sketch": inpaint_sketch,
            "inpaint_upload": upload_image,
        }  # fmt: skip
        self._tabs = tabs
        return [
            image,
            sketch,
            inpaint,
            inpaint_sketch,
            upload_image,
            upload_mask,
            batch_input,
            batch_output,
            batch_masks,
        ]


def build_tab(services: Services, sections: Sequence[SectionFactory] = ()) -> GenerationTab:
    refiner = RefinerSection(services, "img2img")
    return build_generation_tab(
        services,
        "img2img",
        top=Img2ImgSection(services),
        sections=[lambda name: refiner, *sections],
        params_type=Img2Img,
    )


# ---- what the sub-tabs hold ----


def _editor_parts(
    value: Mapping[str, Any] | None,
) -> tuple[Image.Image | None, list[Image.Image], Image.Image | None]:
    """(background, layers, composite) of a gr.ImageEditor value."""
    if not value:
        return None, [], None
    return value.get("background"), list(value.get("layers") or []), value.get("composite")


def _required(image: Image.Image | None, mode: str) -> Image.Image:
    if image is None:
        raise InvalidParameter(f"No input image: upload one in the {MODES[mode]} tab")
    return image


def mode_inputs(v: Img2ImgValues) -> tuple[Image.Image, Image.Image | None]:
    """The init image and mask (None outside inpainting) that the active sub-tab holds."""
    if v.mode == "img2img":
        return _required(v.image, v.mode), None
    if v.mode == "inpaint_upload":
        image = _required(v.upload_image, v.mode)
        if v.upload_mask is None:
            raise InvalidParameter("Inpaint upload needs a mask: upload one under the image")
        return image, v.upload_mask
    editors = {"sketch": v.sketch, "inpaint": v.inpaint, "inpaint_sketch": v.inpaint_sketch}
    if v.mode not in editors:
        raise InvalidParameter(f"img2img mode {v.mode!r} has no single input image")
    background, layers, composite = _editor_parts(editors[v.mode])
    if v.mode == "sketch":
        return _required(composite, v.mode), None
    background = _required(background, v.mode)
    mask = mask_from_layers(layers, background.size)
    if v.mode == "inpaint":
        return background, mask
    return sketch_over(background, composite or background, mask, int(v.mask_blur)), mask


def scale_note(v: Img2ImgValues) -> str:
    """The "Resize by" line under the scale slider: from which size to which."""
    if v.mode == "batch":
        return "Each image of the batch is resized by this scale."
    try:
        image, _ = mode_inputs(v)
    except InvalidParameter:
        return "Upload an image to see its new size."
    width, height = scaled_size(image.size, float(v.scale))
    return f"Resize from: {image.width}x{image.height} to: {width}x{height}"
