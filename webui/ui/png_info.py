"""The PNG Info tab: drop an image made here or by A1111 and see its generation parameters.

The upload is taken as the file itself (type="filepath"), not a re-encoded copy, so the PNG text chunk
or JPEG/WebP EXIF comment that holds the infotext survives. "Send to" buttons hand the text (and the
image) to the generation tabs through send_to.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image, UnidentifiedImageError

from webui.core import infotext
from webui.core.errors import UserError
from webui.services.outputs import read_infotext
from webui.ui import send_to

if TYPE_CHECKING:
    from webui.services.container import Services

# Where "Send to" buttons go, in A1111's order; the keys are the target tabs' names.
SEND_TARGETS = {
    "txt2img": "Send to txt2img",
    "img2img": "Send to img2img",
    "inpaint": "Send to inpaint",
    "extras": "Send to extras",  # the picture only (webui.ui.extras_tab)
}


@dataclass(frozen=True)
class ImageInfo:
    text: str  # the raw infotext ("" when the image has none)
    fields: dict[str, str]  # parsed: Prompt, Negative prompt, then every key: value
    message: str  # what to tell the user ("" when all is well)


def read_image_info(path: str | Path | None) -> ImageInfo:
    """The infotext stored in the image file at `path`, parsed; a clear message when there is none."""
    if not path:
        return ImageInfo("", {}, "")
    try:
        with Image.open(path) as image:
            text = read_infotext(image)
    except UnidentifiedImageError:
        raise UserError("Source: the uploaded file is not an image") from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # no path in the message
        raise UserError(f"Source: the image cannot be read ({type(error).__name__})") from None
    if not text:
        return ImageInfo("", {}, "This image holds no generation parameters.")
    return ImageInfo(text, infotext.parse(text), "")


@dataclass
class PngInfoTab:
    image: gr.Image
    text: gr.Textbox  # the raw infotext: what "Send to" pastes
    send: dict[str, gr.Button]  # target tab name → its "Send to" button


def build_tab() -> PngInfoTab:
    with gr.Row(equal_height=False):
        with gr.Column():
            image = gr.Image(
                # image_mode=None: the uploaded file itself in any mode (RGBA, palette), not a converted copy
                label="Source", type="filepath", image_mode=None, sources=["upload", "clipboard"],
                elem_id="pnginfo_image",
                height=480,
            )  # fmt: skip
        with gr.Column():
            message = gr.Markdown(elem_id="pnginfo_message")
            text = gr.Textbox(
                label="Parameters", lines=6, interactive=False, elem_id="pnginfo_generation_info",
                buttons=["copy"],
            )  # fmt: skip
            fields = gr.JSON(label="Parsed", elem_id="pnginfo_fields")
            with gr.Row(elem_id="pnginfo_send"):
                send = {
                    target: gr.Button(label, elem_id=f"pnginfo_send_to_{target}", min_width=80)
                    for target, label in SEND_TARGETS.items()
                }

    def show(payload: Mapping[str, Any] | None) -> tuple[str, str, dict[str, str] | None]:
        # Raw payload (preprocess=False): gradio's own preprocessing of a non-image fails with its
        # internal error and the upload folder's paths.
        path = payload.get("path") if isinstance(payload, Mapping) else None
        try:
            info = read_image_info(path)
        except UserError as error:
            gr.Warning(str(error))
            return f"**{error}**", "", None
        return (f"**{info.message}**" if info.message else ""), info.text, info.fields or None

    image.change(show, inputs=image, outputs=[message, text, fields], preprocess=False)
    return PngInfoTab(image=image, text=text, send=send)


def connect_send_to(
    services: Services, pnginfo: PngInfoTab, targets: Sequence[send_to.Target], checkpoint: gr.Dropdown | None
) -> None:
    """Wire the "Send to" buttons: the parameters (and, where the target takes one, the image) go there."""
    for target in targets:
        image = pnginfo.image if target.image is not None else None
        send_to.connect(
            services,
            pnginfo.send[target.name],
            target,
            image=image,
            infotext=pnginfo.text,
            checkpoint=checkpoint,
        )
