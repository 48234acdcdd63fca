"""The "Send to" buttons: a picture and its generation parameters go to another tab.

A Target is where they land: a page tab (switched to), that tab's controls (filled from the picture's
infotext by webui.ui.paste, with the ↙ button's rules, the checkpoint included) and, for img2img and
inpaint, the image input and the sub-tab. blocks.py builds the page's targets once; any tab connects its
own buttons to them:

    targets = send_to.page_targets(page_tabs, txt2img_tab, img2img_tab)
    button = send_to.button("pnginfo", targets.inpaint)   # "Send to inpaint", elem_id pnginfo_send_to_inpaint
    send_to.connect(services, button, targets.inpaint, image=png_image, infotext=png_text, checkpoint=ckpt)

`image` is a component whose value is a PIL image or a file path (None: parameters only, e.g. to
txt2img); `infotext` one whose value is the infotext. A generation tab's gallery gets its buttons with
`gallery_buttons`, which sends the selected picture with its own infotext.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from webui.core.errors import UserError
from webui.services.batch import open_image
from webui.ui import paste
from webui.ui.generation import GenerationTab
from webui.ui.img2img import Img2ImgSection

if TYPE_CHECKING:
    from webui.services.container import Services

Component = gr.components.Component
# (picture, infotext, whether a picture was expected) → updates of the target's outputs
_Send = Callable[[Image.Image | None, str, bool], list[Any]]


@dataclass(frozen=True)
class Target:
    """Where "Send to <name>" delivers."""

    name: str  # "txt2img", "img2img", "inpaint"
    page_tabs: gr.Tabs
    tab: GenerationTab  # its name is the id of its page tab
    image: Component | None = None  # the input the picture goes to (None: parameters only)
    switches: tuple[tuple[Component, Any], ...] = ()  # (component, update) on arrival: sub-tab, mode


@dataclass(frozen=True)
class Targets:
    """The page's "Send to" destinations."""

    txt2img: Target
    img2img: Target
    inpaint: Target


def page_targets(page_tabs: gr.Tabs, txt2img_tab: GenerationTab, img2img_tab: GenerationTab) -> Targets:
    """The targets of a page whose Tabs hold the two generation tabs (tab ids = their names)."""
    inputs = next(section for section in img2img_tab.sections if isinstance(section, Img2ImgSection))

    def with_image(sub_tab: str) -> Target:
        image, switches = inputs.send_image_to(sub_tab)
        return Target(sub_tab, page_tabs, img2img_tab, image, switches)

    return Targets(
        txt2img=Target("txt2img", page_tabs, txt2img_tab),
        img2img=with_image("img2img"),
        inpaint=with_image("inpaint"),
    )


def button(source: str, target: Target) -> gr.Button:
    """A "Send to <target>" button (elem_id `<source>_send_to_<target>`), rendered where it is called."""
    return gr.Button(f"Send to {target.name}", elem_id=f"{source}_send_to_{target.name}", min_width=80)


def connect(
    services: Services,
    trigger: gr.Button,
    target: Target,
    *,
    image: Component | None,
    infotext: Component,
    checkpoint: Component | None = None,
) -> None:
    """Clicking `trigger` sends `image`'s picture and `infotext`'s parameters to `target`."""
    send, outputs = _sender(services, target, checkpoint)
    picture_inputs = [image] if image is not None else []

    def from_components(*values: Any) -> list[Any]:
        picture = _picture(values[0]) if image is not None else None
        return send(picture, values[-1], image is not None)

    trigger.click(from_components, inputs=[*picture_inputs, infotext], outputs=outputs)


def gallery_buttons(
    services: Services, source: GenerationTab, targets: Sequence[Target], checkpoint: Component | None = None
) -> list[gr.Button]:
    """Buttons "Send to …" in `source`'s output row: they send the selected gallery picture and its
    infotext."""
    selected = selection(source.gallery)
    with source.output_buttons:
        buttons = [button(source.name, target) for target in targets]
    for trigger, target in zip(buttons, targets):
        send, outputs = _sender(services, target, checkpoint)
        trigger.click(
            _from_gallery(send), inputs=[source.gallery, source.infotexts, selected], outputs=outputs
        )
    return buttons


def selection(gallery: gr.Gallery) -> gr.State:
    """A state holding the index of `gallery`'s selected item (0 when new results arrive: the first is
    shown). The gallery buttons (Send to, 💾, 🗃️) act on it."""
    selected = gr.State(0)

    def remember(event: gr.SelectData) -> int:
        return event.index

    gallery.select(remember, outputs=selected, queue=False)
    gallery.change(lambda: 0, outputs=selected, queue=False)
    return selected


def _from_gallery(send: _Send) -> Callable[[list[Any] | None, list[str], int], list[Any]]:
    def from_gallery(items: list[Any] | None, texts: list[str], index: int) -> list[Any]:
        if not items:
            return send(None, "", True)
        index = index if 0 <= index < len(items) else 0
        item = items[index]
        picture = _picture(item[0] if isinstance(item, (tuple, list)) else item)
        return send(picture, texts[index] if index < len(texts) else "", True)

    return from_gallery


def _sender(
    services: Services, target: Target, checkpoint: Component | None
) -> tuple[_Send, list[Component]]:
    """The handler (picture, infotext, picture expected) → updates, and its outputs."""
    paste_text, paste_outputs = paste.paste_handler(services, target.tab, checkpoint)
    image_outputs = [target.image] if target.image is not None else []
    outputs = [
        *paste_outputs,
        target.page_tabs,
        *(component for component, _ in target.switches),
        *image_outputs,
    ]

    def send(picture: Image.Image | None, text: str, picture_expected: bool) -> list[Any]:
        if picture_expected and picture is None and target.image is not None:
            gr.Warning("No image to send")
            return [gr.skip() for _ in outputs]
        parameters = paste_text(text) if text and text.strip() else [gr.skip() for _ in paste_outputs]
        images = [picture if picture is not None else gr.skip()] if target.image is not None else []
        return [
            *parameters,
            gr.Tabs(selected=target.tab.name),
            *(update for _, update in target.switches),
            *images,
        ]

    return send, outputs


def _picture(value: Any) -> Image.Image | None:
    """A component's image value (PIL image or file path) as a PIL image; None when empty or unreadable."""
    if value is None or isinstance(value, Image.Image):
        return value
    try:
        return open_image(Path(value))
    except UserError as error:
        gr.Warning(str(error))
        return None
