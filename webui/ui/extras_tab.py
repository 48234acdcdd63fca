"""A1111's Extras tab: upscale (Scale by / Scale to, two upscalers blended) and restore faces, for one
image, a batch of uploads or a folder (Batch from directory, limited to the data folder when the UI is
reachable from other machines, as img2img's batch). The work is a queued job of webui.services.extras;
results are saved to outputs/extras-images with their "postprocessing" infotext, as A1111 does.

Other tabs send pictures here with `image_button` (under each gallery) and `connect_send`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from webui.core.cmd_args import insecure_access_allowed
from webui.core.errors import UserError
from webui.services import batch
from webui.services.batch import open_image
from webui.services.extras import ExtrasRequest, ExtrasResult, FaceRestoration
from webui.services.outputs import embed_infotext
from webui.services.upscalers import NONE, ExtrasResize
from webui.ui.owners import owner_of
from webui.ui.progress import wait_with_progress

if TYPE_CHECKING:
    from webui.services.container import Services

TAB_ID = "extras"
MODES = ("Single Image", "Batch Process", "Batch from Directory")


@dataclass(frozen=True)
class ExtrasTab:
    image: gr.Image  # the Single Image input (a file path, so the picture's own text chunks survive)
    gallery: gr.Gallery
    info: gr.Textbox


@dataclass(frozen=True)
class Inputs:
    """The tab's values for one run (in the order of the handler's inputs)."""

    mode: str
    image: str | None
    files: list[Any] | None
    input_dir: str
    output_dir: str
    show_results: bool
    resize_mode: int
    scale: float
    width: int
    height: int
    crop: bool
    upscaler_1: str
    upscaler_2: str
    upscaler_2_visibility: float
    gfpgan_visibility: float
    codeformer_visibility: float
    codeformer_weight: float
    upscale_first: bool


def _sources(
    services: Services, values: Inputs
) -> tuple[tuple[Image.Image | Path, ...], tuple[str, ...], Path | None]:
    """The images (or files to read on the worker), the names to save under, the output folder."""
    if values.mode == MODES[1]:
        paths = [Path(item if isinstance(item, str) else item.name) for item in values.files or []]
        if not paths:
            raise UserError("Batch Process: upload one or more images first")
        return tuple(open_image(path) for path in paths), (), None
    if values.mode == MODES[2]:
        any_folder = insecure_access_allowed(services.args)
        folders = batch.batch_folders(
            services.paths.data_dir, any_folder, values.input_dir, values.output_dir, ""
        )
        files, _ = batch.batch_files(folders)
        return tuple(path for path, _ in files), tuple(path.stem for path, _ in files), folders.output
    if not values.image:
        raise UserError("Upload an image first")
    return (open_image(Path(values.image)),), (), None


def request_from(services: Services, values: Inputs) -> ExtrasRequest:
    sources, names, output = _sources(services, values)
    return ExtrasRequest(
        sources=sources,
        names=names,
        resize=ExtrasResize(
            resize_mode=values.resize_mode,
            scale=values.scale,
            width=int(values.width),
            height=int(values.height),
            crop=values.crop,
            upscaler_1=values.upscaler_1 or NONE,
            upscaler_2=values.upscaler_2 or NONE,
            upscaler_2_visibility=values.upscaler_2_visibility,
        ),
        faces=FaceRestoration(
            values.gfpgan_visibility, values.codeformer_visibility, values.codeformer_weight
        ),
        upscale_first=values.upscale_first,
        save=True,
        output_dir=output,
        # A1111 shows the results of a folder only when asked (they may be many)
        keep_results=values.show_results or values.mode != MODES[2],
    )


def run(
    services: Services, values: Inputs, progress: gr.Progress, owner: str | None = None
) -> tuple[list[Image.Image], str]:
    try:
        job = services.extras.submit(request_from(services, values), owner)
        result: ExtrasResult = wait_with_progress(job, progress)
    except UserError as error:
        raise gr.Error(str(error)) from error
    for warning in result.warnings:
        gr.Warning(warning)
    if result.interrupted:
        gr.Warning("Interrupted")
    return list(result.images), result.infotext


def build_tab(services: Services) -> ExtrasTab:
    names = services.extras.upscaler_names()
    mode = gr.State(MODES[0])
    resize_mode = gr.State(0)
    with gr.Row(equal_height=False):
        with gr.Column():
            with gr.Tabs(elem_id="mode_extras"):
                with gr.Tab(MODES[0], elem_id="extras_single_tab") as single_tab:
                    image = gr.Image(
                        label="Source", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                        elem_id="extras_image", height=400,
                    )  # fmt: skip
                with gr.Tab(MODES[1], elem_id="extras_batch_process_tab") as batch_tab:
                    files = gr.File(
                        label="Batch Process", file_count="multiple", elem_id="extras_image_batch"
                    )
                with gr.Tab(MODES[2], elem_id="extras_batch_directory_tab") as folder_tab:
                    input_dir = gr.Textbox(label="Input directory", elem_id="extras_batch_input_dir")
                    output_dir = gr.Textbox(
                        label="Output directory", placeholder="Leave blank to save to outputs/extras-images",
                        elem_id="extras_batch_output_dir",
                    )  # fmt: skip
                    show_results = gr.Checkbox(
                        label="Show result images", value=True, elem_id="extras_show_extras_results"
                    )
            generate = gr.Button("Generate", variant="primary", elem_id="extras_generate")
            with gr.Tabs(elem_id="extras_resize_mode"):
                with gr.Tab("Scale by", elem_id="extras_scale_by_tab") as scale_by_tab:
                    scale = gr.Slider(
                        1.0, 8.0, value=4, step=0.05, label="Resize", elem_id="extras_upscaling_resize"
                    )
                with gr.Tab("Scale to", elem_id="extras_scale_to_tab") as scale_to_tab:
                    width = gr.Slider(
                        64, 8192, value=512, step=8, label="Width", elem_id="extras_upscaling_resize_w"
                    )
                    height = gr.Slider(
                        64, 8192, value=512, step=8, label="Height", elem_id="extras_upscaling_resize_h"
                    )
                    crop = gr.Checkbox(label="Crop to fit", value=True, elem_id="extras_upscaling_crop")
            upscaler_1 = gr.Dropdown(names, value=NONE, label="Upscaler 1", elem_id="extras_upscaler_1")
            with gr.Row():
                upscaler_2 = gr.Dropdown(names, value=NONE, label="Upscaler 2", elem_id="extras_upscaler_2")
                visibility = gr.Slider(
                    0.0, 1.0, value=0.0, step=0.001, label="Upscaler 2 visibility",
                    elem_id="extras_upscaler_2_visibility",
                )  # fmt: skip
            gfpgan = gr.Slider(
                0.0, 1.0, value=0.0, step=0.001, label="GFPGAN visibility", elem_id="extras_gfpgan_visibility"
            )
            with gr.Row():
                codeformer = gr.Slider(
                    0.0, 1.0, value=0.0, step=0.001, label="CodeFormer visibility",
                    elem_id="extras_codeformer_visibility",
                )  # fmt: skip
                weight = gr.Slider(
                    0.0, 1.0, value=0.0, step=0.001, label="CodeFormer weight",
                    info="0 = maximum effect, 1 = minimum effect", elem_id="extras_codeformer_weight",
                )  # fmt: skip
            upscale_first = gr.Checkbox(
                label="Upscale before restoring faces", elem_id="extras_upscale_before_face_fix"
            )
        with gr.Column():
            gallery = gr.Gallery(
                label="Result", elem_id="extras_gallery", columns=4, height="auto", format="png"
            )
            info = gr.Textbox(
                label="Postprocessing", interactive=False, lines=2, elem_id="extras_generation_info"
            )

    for tab, value in ((single_tab, MODES[0]), (batch_tab, MODES[1]), (folder_tab, MODES[2])):
        tab.select(lambda v=value: v, outputs=mode, queue=False)
    scale_by_tab.select(lambda: 0, outputs=resize_mode, queue=False)
    scale_to_tab.select(lambda: 1, outputs=resize_mode, queue=False)
    controls = [
        mode,
        image,
        files,
        input_dir,
        output_dir,
        show_results,
        resize_mode,
        scale,
        width,
        height,
        crop,
    ]
    controls += [upscaler_1, upscaler_2, visibility, gfpgan, codeformer, weight, upscale_first]

    def handler(
        request: gr.Request,
        *values: Any,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[list[Image.Image], str]:
        return run(services, Inputs(*values), progress, owner_of(request))

    generate.click(handler, inputs=controls, outputs=[gallery, info])
    return ExtrasTab(image=image, gallery=gallery, info=info)


def _path(value: Any) -> str | None:
    """A gallery item's or image component's file path."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("path") or (value.get("image") or {}).get("path")
    return str(value) if value else None


def _with_infotext(path: str, text: str) -> str:
    """A copy of the picture at `path` with `text` as its infotext (the gallery's files are re-encoded
    copies without it), in the temporary folder gradio serves from."""
    if not text:
        return path
    image = open_image(Path(path))
    with tempfile.NamedTemporaryFile(suffix=".png", delete=False) as handle:
        handle.write(embed_infotext(image, text, "png"))
    return handle.name


def image_button(
    gallery: gr.Gallery, infotexts: gr.State, row: gr.Row, source: str, page_tabs: gr.Tabs, extras: ExtrasTab
) -> gr.Button:
    """ "📐 Send to extras" in `row` under `gallery`: the selected picture, with its infotext (`infotexts`:
    the gallery's texts), goes to the Extras tab's Single Image input."""
    selected = gr.State(0)

    def remember(event: gr.SelectData) -> int:
        return event.index

    gallery.select(remember, outputs=selected, queue=False)
    gallery.change(lambda: 0, outputs=selected, queue=False)
    with row:
        trigger = gr.Button("📐 Send to extras", elem_id=f"{source}_send_to_extras", min_width=80)

    def send(items: list[Any] | None, texts: list[str] | None, index: int) -> tuple[Any, Any]:
        index = index if items and 0 <= index < len(items) else 0
        path = _path(items[index]) if items else None
        if path is None:
            gr.Warning("No image to send")
            return gr.skip(), gr.skip()
        text = texts[index] if texts and index < len(texts) else ""
        try:
            return gr.Tabs(selected=TAB_ID), _with_infotext(path, text)
        except UserError as error:
            raise gr.Error(str(error)) from error

    trigger.click(send, inputs=[gallery, infotexts, selected], outputs=[page_tabs, extras.image])
    return trigger


def connect_send(trigger: gr.Button, image: gr.Image, page_tabs: gr.Tabs, extras: ExtrasTab) -> None:
    """`trigger` sends the picture of `image` (a file path component, e.g. PNG Info's) to Extras."""

    def send(value: Any) -> tuple[Any, Any]:
        path = _path(value)
        if path is None:
            gr.Warning("No image to send")
            return gr.skip(), gr.skip()
        return gr.Tabs(selected=TAB_ID), path

    trigger.click(send, inputs=image, outputs=[page_tabs, extras.image])
