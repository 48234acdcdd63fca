"""modules.ui_common: the small UI helpers A1111 extensions build their tabs with (refresh buttons, an
output panel, saving gallery images with the Save button's behaviour, plain text as HTML)."""

from __future__ import annotations

import base64
import html
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from webui.compat.a1111.modules import _app
from webui.compat.a1111.modules.ui_components import ToolButton

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

__all__ = ["ToolButton"]

refresh_symbol = "\U0001f504"  # 🔄
folder_symbol = "\U0001f4c2"  # 📂
save_style_symbol = "\U0001f4be"  # 💾
apply_style_symbol = "\U0001f4cb"  # 📋
clear_prompt_symbol = "\U0001f5d1\ufe0f"  # 🗑️


def plaintext_to_html(text: str, classname: str | None = None) -> str:
    """Each line escaped, lines joined by <br>, in one paragraph (with the class when given)."""
    lines = "<br>\n".join(html.escape(line) for line in text.split("\n"))
    return f"<p class='{classname}'>{lines}</p>" if classname else f"<p>{lines}</p>"


def create_refresh_button(
    refresh_component: Any, refresh_method: Callable[[], Any], refreshed_args: Any, elem_id: str
) -> Any:
    """A 🔄 button that calls `refresh_method`, then updates the component(s) with `refreshed_args` (a
    dict of properties, or a function returning one)."""
    import gradio as gr

    components = refresh_component if isinstance(refresh_component, list) else [refresh_component]

    def refresh() -> Any:
        refresh_method()
        args = refreshed_args() if callable(refreshed_args) else refreshed_args
        updates = [gr.update(**(args or {})) for _ in components]
        return updates if isinstance(refresh_component, list) else updates[0]

    button = ToolButton(value=refresh_symbol, elem_id=elem_id)
    button.click(fn=refresh, inputs=[], outputs=components)
    return button


@dataclass
class OutputPanel:
    """create_output_panel's parts; unpacks as A1111 before 1.6 returned them (gallery, generation_info,
    infotext, html_log)."""

    gallery: Any
    generation_info: Any
    infotext: Any
    html_log: Any
    button_upscale: Any = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.gallery, self.generation_info, self.infotext, self.html_log))


def create_output_panel(tabname: str, outdir: str, toprow: Any = None) -> OutputPanel:
    """A gallery with the infotext of the chosen image and a log line under it (A1111's elem_ids)."""
    import gradio as gr

    with gr.Column(elem_id=f"{tabname}_results"):
        gallery = gr.Gallery(label="Output", show_label=False, elem_id=f"{tabname}_gallery", columns=4)
        generation_info = gr.Textbox(visible=False, elem_id=f"generation_info_{tabname}")
        infotext = gr.HTML(elem_id=f"html_info_{tabname}", elem_classes="infotext")
        html_log = gr.HTML(elem_id=f"html_log_{tabname}", elem_classes="html-log")
    return OutputPanel(gallery, generation_info, infotext, html_log)


def _save_files(
    plugins: Plugins, js_data: str, images: list[Any], do_make_zip: bool, index: int
) -> tuple[Any, str]:
    """The Save button: gallery images (the chosen one only, as A1111's "save_selected_only") saved
    into opts.outdir_save with their infotexts (js_data: the generation_info JSON); optionally zipped."""
    import gradio as gr

    from webui.compat.a1111.modules import images as a1111_images

    data = json.loads(js_data) if js_data else {}
    infotexts = data.get("infotexts") or [data.get("infotext", "")] * len(images)
    opts = plugins.compat.modules["shared"].opts if plugins.compat is not None else None
    folder = Path(str(getattr(opts, "outdir_save", "log/images")))
    if not folder.is_absolute():
        folder = plugins.user_dir.parent / folder
    chosen = list(enumerate(images))
    if index > -1 and getattr(opts, "save_selected_only", True) and index < len(images):
        chosen = [(index, images[index])]
    paths = []
    for number, item in chosen:
        text = infotexts[number] if number < len(infotexts) else ""
        path, _ = a1111_images.save_image(_image(item), str(folder), "", info=text)
        paths.append(path)
    if do_make_zip and paths:
        archive = folder / "images.zip"
        with zipfile.ZipFile(archive, "w") as zipped:
            for path in paths:
                zipped.write(path, Path(path).name)
        paths.insert(0, str(archive))
    names = ", ".join(Path(path).name for path in paths)
    return gr.update(value=paths, visible=True), plaintext_to_html(f"Saved: {names}")


def _image(item: Any) -> Image.Image:
    """A gallery entry as gradio hands it: a PIL image, a file path, a data URL, a dict or an (image,
    caption) pair."""
    if isinstance(item, (tuple, list)):
        item = item[0]
    if isinstance(item, dict):
        item = item.get("image", item)
        item = item.get("path") or item.get("name") if isinstance(item, dict) else item
    if isinstance(item, Image.Image):
        return item
    text = str(item)
    if text.startswith("data:image/"):
        return Image.open(io.BytesIO(base64.b64decode(text.split(",", 1)[1])))
    return Image.open(text)


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "save_files": lambda plugins: lambda *args, **kwargs: _save_files(plugins, *args, **kwargs),
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)
