"""The whole page: quick settings row at the top, then one tab per module."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import gradio as gr

from webui.core.errors import UserError
from webui.ui import txt2img
from webui.ui.generation import SectionFactory

if TYPE_CHECKING:
    from webui.app import App

log = logging.getLogger(__name__)


def build_ui(app: App) -> gr.Blocks:
    # Sections added to both generation tabs (ControlNet units, scripts), in page order.
    sections: list[SectionFactory] = []
    with gr.Blocks(title="Stable Diffusion") as demo:
        checkpoint = _checkpoint_row(app)
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("txt2img", id="txt2img"):
                txt2img.build_tab(app, sections)
        demo.load(lambda: _checkpoint_choices(app), outputs=checkpoint)
    return demo


def _checkpoint_choices(app: App) -> gr.Dropdown:
    return gr.Dropdown(choices=app.registry.titles(), value=app.current_checkpoint_title())


def _vae_choices(app: App) -> gr.Dropdown:
    return gr.Dropdown(choices=app.manager.vaes.choices(), value=app.settings.get("sd_vae"))


def _checkpoint_row(app: App) -> gr.Dropdown:
    with gr.Row(equal_height=True):
        checkpoint = gr.Dropdown(
            label="Stable Diffusion checkpoint",
            choices=app.registry.titles(),
            value=app.current_checkpoint_title() or None,
            elem_id="setting_sd_model_checkpoint",
            interactive=True,
            scale=4,
        )
        refresh = gr.Button("🔄", elem_id="refresh_sd_model_checkpoint", scale=0, min_width=40)
        vae = gr.Dropdown(
            label="SD VAE",
            choices=app.manager.vaes.choices(),
            value=app.settings.get("sd_vae"),
            elem_id="setting_sd_vae",
            interactive=True,
            scale=2,
        )

    def select(event: gr.SelectData) -> gr.Dropdown:
        title = str(event.value)
        try:
            app.select_checkpoint(title)
        except UserError as error:
            gr.Warning(str(error))
        return _checkpoint_choices(app)  # on failure the dropdown goes back to the model still loaded

    def refresh_list() -> tuple[gr.Dropdown, gr.Dropdown]:
        app.refresh_checkpoints()
        app.manager.vaes.refresh()
        return _checkpoint_choices(app), _vae_choices(app)

    def select_vae(event: gr.SelectData) -> gr.Dropdown:
        try:
            app.select_vae(str(event.value))
        except UserError as error:
            gr.Warning(str(error))
        return _vae_choices(app)  # on failure the dropdown goes back to the VAE still in use

    checkpoint.select(select, outputs=checkpoint)
    vae.select(select_vae, outputs=vae)
    refresh.click(refresh_list, outputs=[checkpoint, vae])
    return checkpoint
