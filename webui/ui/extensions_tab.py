"""The Extensions tab: installed extensions with enable/disable (saved; applied on restart), update,
install from a git URL or local path, and the errors extensions raised. Installing and updating are
refused on a server other machines can reach unless --enable-insecure-extension-access (A1111's rule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from webui.core.cmd_args import insecure_access_allowed
from webui.core.errors import UserError
from webui.ui.extensions_available import available_tab

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins
    from webui.services.container import Services

COLUMNS = ["Extension", "Kind", "Enabled", "Loaded", "URL", "Branch", "Version", "Date", "Description"]
ERROR_COLUMNS = ["#", "Extension", "Where", "Error"]
RESTART_NOTE = "Saved. Restart the web UI to load or unload extensions."


def extension_rows(plugins: Plugins) -> list[list[Any]]:
    loaded = {extension.name for extension in plugins.loaded}
    rows = []
    for extension in plugins.extensions:
        git = extension.git_info()
        rows.append(
            [
                extension.name,
                "built-in" if extension.builtin else "installed",
                "yes" if extension.enabled else "no",
                "yes" if extension.name in loaded else "no",
                git.remote,
                git.branch,
                git.version,
                git.date_text,
                extension.metadata.get("description", ""),
            ]
        )
    return rows


def error_rows(plugins: Plugins) -> list[list[Any]]:
    return [
        [error.number, error.extension, error.where, error.error]
        for error in reversed(plugins.errors.entries())
    ]


def build_tab(services: Services) -> None:
    plugins = services.plugins
    allowed = insecure_access_allowed(services.args)
    names = [extension.name for extension in plugins.extensions]
    with gr.Tabs(elem_id="extensions_tabs"):
        with gr.Tab("Installed", id="extensions_installed"):
            with gr.Row():
                enabled = gr.CheckboxGroup(
                    names, value=[e.name for e in plugins.extensions if e.enabled],
                    label="Enabled extensions",
                    elem_id="extensions_enabled", scale=4,
                )  # fmt: skip
                apply = gr.Button("Apply and save", variant="primary", elem_id="extensions_apply", scale=1)
            status = gr.Markdown(elem_id="extensions_status")
            table = gr.Dataframe(
                value=extension_rows(plugins),
                headers=COLUMNS,
                interactive=False,
                elem_id="extensions_table",
                wrap=True,
            )
            with gr.Row():
                updatable = [e.name for e in plugins.extensions if not e.builtin]
                to_update = gr.Dropdown(
                    updatable,
                    label="Extension to update",
                    elem_id="extensions_update_choice",
                    interactive=allowed,
                )
                update = gr.Button("Update (git pull)", elem_id="extensions_update", interactive=allowed)
            gr.Markdown("### Errors raised by extensions (newest first)")
            errors = gr.Dataframe(
                value=error_rows(plugins),
                headers=ERROR_COLUMNS,
                interactive=False,
                elem_id="extensions_errors",
                wrap=True,
            )
            refresh = gr.Button("Refresh", elem_id="extensions_refresh")
        with gr.Tab("Install from URL", id="extensions_install"):
            if not allowed:
                gr.Markdown(
                    "Installing is disabled: this server is reachable from other machines. Start it with "
                    "`--enable-insecure-extension-access` to allow it.",
                    elem_id="extensions_install_disabled",
                )
            url = gr.Textbox(
                label="URL for extension's git repository (or a local folder)",
                elem_id="extensions_install_url",
            )
            branch = gr.Textbox(
                label="Specific branch name",
                placeholder="Leave empty for default main branch",
                elem_id="extensions_install_branch",
            )
            folder = gr.Textbox(
                label="Local directory name",
                placeholder="Leave empty for auto",
                elem_id="extensions_install_dirname",
            )
            install = gr.Button(
                "Install", variant="primary", elem_id="extensions_install_button", interactive=allowed
            )
            result = gr.Markdown(elem_id="extensions_install_result")
        with gr.Tab("Available", id="extensions_available"):
            available_tab(plugins, allowed)

    def save_enabled(chosen: list[str]) -> str:
        try:
            plugins.set_enabled(chosen)
        except UserError as error:
            return f"⚠️ {error}"
        return RESTART_NOTE

    def do_install(address: str, branch_name: str, dirname: str) -> tuple[str, Any, Any, Any]:
        try:
            path = plugins.install(address, dirname, branch_name)
        except UserError as error:
            return f"⚠️ {error}", gr.update(), gr.update(), gr.update()
        names = [extension.name for extension in plugins.extensions]
        return (
            f"Installed into {path}. Restart the web UI to load it.",
            extension_rows(plugins),
            gr.CheckboxGroup(choices=names, value=[e.name for e in plugins.extensions if e.enabled]),
            gr.Dropdown(choices=[e.name for e in plugins.extensions if not e.builtin]),
        )

    def do_update(name: str | None) -> tuple[str, Any]:
        if not name:
            return "Choose an extension to update.", gr.update()
        try:
            message = plugins.update(name)
        except UserError as error:
            return f"⚠️ {error}", gr.update()
        return f"{name}: {message}. Restart the web UI to use the new version.", extension_rows(plugins)

    apply.click(save_enabled, inputs=enabled, outputs=status)
    install.click(do_install, inputs=[url, branch, folder], outputs=[result, table, enabled, to_update])
    update.click(do_update, inputs=to_update, outputs=[status, table])
    refresh.click(lambda: (extension_rows(plugins), error_rows(plugins)), outputs=[table, errors])
