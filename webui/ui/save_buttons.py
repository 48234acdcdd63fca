"""A1111's buttons under a generation tab's gallery: 📂 open the tab's output folder (only when the UI is
local: never a folder of the server for a remote user), 💾 save the selected image (or all, per the
option save_selected_only) into outdir_save with log.csv, 🗃️ the same in one zip. The files written are
offered for download under the buttons. The work is in webui.services.saved_copies / folder_opener.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from webui.core.cmd_args import reachable_from_network
from webui.core.errors import UserError
from webui.services.batch import open_image
from webui.services.folder_opener import Opener, open_folder, system_opener
from webui.services.options import SaveOptions
from webui.services.saved_copies import Picture, chosen, save_copies, zip_copies
from webui.ui import send_to
from webui.ui.errors import user_error
from webui.ui.generation import GenerationTab

if TYPE_CHECKING:
    from webui.services.container import Services

GRID_CAPTION = "Grid"  # the caption generation.py gives a batch grid in the gallery


@dataclass(frozen=True)
class SaveButtons:
    open_folder: gr.Button
    save: gr.Button
    save_zip: gr.Button
    download: gr.File


def folder_openable(services: Services) -> bool:
    """📂 is offered only to a local UI (A1111 hides it under --hide-ui-dir-config, and we also when the
    UI is reachable from other machines)."""
    return not (services.args.hide_ui_dir_config or reachable_from_network(services.args))


def add_buttons(services: Services, tab: GenerationTab, opener: Opener = system_opener) -> SaveButtons:
    """📂, 💾 and 🗃️ appended to `tab`'s output row, and their download list in the tab's downloads
    column under it. `opener` shows a folder (tests pass their own)."""
    name = tab.name
    selected = send_to.selection(tab.gallery)
    with tab.output_buttons:
        folder_button = gr.Button(
            "📂", elem_id=f"{name}_open_folder", min_width=40, scale=0, visible=folder_openable(services)
        )
        save = gr.Button("💾", elem_id=f"save_{name}", min_width=40, scale=0)
        save_zip = gr.Button("🗃️", elem_id=f"save_zip_{name}", min_width=40, scale=0)
    assert tab.downloads is not None, "build_generation_tab makes the downloads column"
    with tab.downloads:
        download = gr.File(
            None, file_count="multiple", interactive=False, show_label=False, visible=False,
            elem_id=f"download_files_{name}",
        )  # fmt: skip

    def open_output_folder() -> None:
        if not folder_openable(services):  # the button is hidden; a crafted request gets nothing either
            raise gr.Error("Opening folders is only possible when the UI runs on this machine")
        try:
            open_folder(services.generation.output_dir(name), opener)
        except UserError as error:
            raise user_error(error, name) from error

    def save_files(items: list[Any] | None, infotexts: list[str], index: int, make_zip: bool) -> Any:
        if not items:
            gr.Warning("No images to save")
            return gr.skip()
        folder = services.paths.data_dir / services.settings.get("outdir_save")  # relative: inside it
        first_image = next((i for i, item in enumerate(items) if _caption(item) != GRID_CAPTION), 0)
        indices = chosen(len(items), index, first_image, services.settings.get("save_selected_only"))
        texts = [infotexts[i] if i < len(infotexts) else "" for i in indices]
        try:
            pictures = [Picture(_image(items[i]), text) for i, text in zip(indices, texts)]
            files = save_copies(pictures, folder, SaveOptions.from_settings(services.settings))
            if make_zip:
                files.insert(0, zip_copies(files, folder, texts))
        except UserError as error:
            raise user_error(error, name) from error
        gr.Info(f"Saved: {', '.join(file.name for file in files)}")
        return gr.File(value=[str(file) for file in files], visible=True)

    folder_button.click(open_output_folder, queue=False)
    inputs = [tab.gallery, tab.infotexts, selected]
    save.click(lambda *values: save_files(*values, False), inputs=inputs, outputs=download)
    save_zip.click(lambda *values: save_files(*values, True), inputs=inputs, outputs=download)
    return SaveButtons(folder_button, save, save_zip, download)


def _caption(item: Any) -> str | None:
    return item[1] if isinstance(item, (tuple, list)) and len(item) > 1 else None


def _image(item: Any) -> Image.Image:
    """A gallery item as gradio hands it to a handler: (file path or PIL image, caption)."""
    value = item[0] if isinstance(item, (tuple, list)) else item
    return value if isinstance(value, Image.Image) else open_image(Path(value))
