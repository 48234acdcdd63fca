"""The Extensions tab's "Available" list: an A1111 extension index (a URL or a local file) loaded on
request, each entry marked when installed, and Install for the chosen one (refused, as every install,
on a server other machines can reach without --enable-insecure-extension-access)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.compat.a1111 import extension_index
from webui.core.errors import UserError

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

COLUMNS = ["Extension", "Description", "Tags", "URL", "Installed"]


def available_tab(plugins: Plugins, allowed: bool) -> None:
    if not allowed:
        gr.Markdown(
            "Loading an index and installing are disabled: this server is reachable from other machines. "
            "Start it with `--enable-insecure-extension-access` to allow them.",
            elem_id="extensions_available_disabled",
        )
    with gr.Row():
        source = gr.Textbox(
            value=extension_index.DEFAULT_INDEX_URL,
            label="Extension index (A1111's index.json: a URL or a local file)",
            elem_id="extensions_index_url",
            scale=4,
        )
        load = gr.Button("Load from:", elem_id="extensions_index_load", interactive=allowed, scale=1)
    message = gr.Markdown(elem_id="extensions_available_result")
    table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="extensions_available_table", wrap=True)
    with gr.Row():
        choice = gr.Dropdown([], label="Extension to install", elem_id="extensions_available_choice")
        install = gr.Button(
            "Install", variant="primary", elem_id="extensions_available_install", interactive=allowed
        )
    entries = gr.State([])

    def do_load(where: str) -> tuple[str, Any, Any, list[Any]]:
        try:
            found = extension_index.load(plugins, where)
        except UserError as error:
            return f"⚠️ {error}", gr.update(), gr.update(), []
        names = [entry.name for entry in found if not extension_index.installed(plugins, entry)]
        return (
            f"{len(found)} extensions in the index, {len(found) - len(names)} installed.",
            extension_index.rows(plugins, found),
            gr.Dropdown(choices=names, value=None),
            found,
        )

    def do_install(name: str | None, found: list[Any]) -> tuple[str, Any]:
        if not name:
            return "Choose an extension to install.", gr.update()
        try:
            path = extension_index.install(plugins, found, name)
        except UserError as error:
            return f"⚠️ {error}", gr.update()
        return f"Installed into {path}. Restart the web UI to load it.", extension_index.rows(plugins, found)

    load.click(do_load, inputs=source, outputs=[message, table, choice, entries])
    install.click(do_install, inputs=[choice, entries], outputs=[message, table])
