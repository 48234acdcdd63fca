"""The whole page: the quicksettings row at the top, then one tab per module (A1111's order), then the
wiring between tabs (paste, styles, PNG Info's "Send to")."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from webui.ui import (
    controlnet_ui,
    extensions_tab,
    extras_tab,
    img2img,
    override_settings,
    paste,
    png_info,
    queue_panel,
    save_buttons,
    scripts_ui,
    send_to,
    settings_tab,
    styles_ui,
    txt2img,
    upscale,
)
from webui.ui.generation import SectionFactory

if TYPE_CHECKING:
    from webui.services.container import Services


def build_ui(services: Services) -> gr.Blocks:
    with services.plugins.building_ui():  # A1111 extensions watch the components being made
        return _page(services)


def _page(services: Services) -> gr.Blocks:
    # Sections added to both generation tabs (ControlNet units, scripts), in page order.
    sections: list[SectionFactory] = []
    sections.append(controlnet_ui.section_factory(services))
    sections.append(override_settings.section_factory(services))  # above the Script dropdown, as A1111
    sections.append(scripts_ui.section_factory(services))  # the Script dropdown last, as in A1111
    # Extension tabs (on_ui_tabs) are built outside the page, then rendered into it below.
    extension_tabs = services.plugins.ui_tabs()
    with gr.Blocks(title="Stable Diffusion") as demo:
        quicksettings = settings_tab.build_quicksettings(services)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("txt2img", id="txt2img"), services.plugins.building_ui("txt2img"):
                txt2img_tab = txt2img.build_tab(services, sections)
            with gr.Tab("img2img", id="img2img"), services.plugins.building_ui("img2img"):
                img2img_tab = img2img.build_tab(services, sections)
            with gr.Tab("Extras", id=extras_tab.TAB_ID):
                extras = extras_tab.build_tab(services)
            with gr.Tab("PNG Info", id="pnginfo"):
                pnginfo = png_info.build_tab()
            with gr.Tab("ControlNet", id="controlnet"):
                controlnet_ui.build_tab(services)
            # After A1111's own tabs: scripts that switch tabs by their index still find them.
            with gr.Tab("Queue", id=queue_panel.TAB_ID) as queue_tab:
                queue_panel.build_tab(services, queue_tab)
            for extension_tab in extension_tabs:
                with gr.Tab(
                    extension_tab.title, id=extension_tab.elem_id, elem_id=f"tab_{extension_tab.elem_id}"
                ):
                    services.plugins.render_tab(extension_tab)
            with gr.Tab("Settings", id="settings"):
                settings = settings_tab.build_settings_tab(services, skip=quicksettings)
            with gr.Tab("Extensions", id="extensions"):
                extensions_tab.build_tab(services)
        generation_tabs = [txt2img_tab, img2img_tab]
        checkpoint = quicksettings.get(settings_tab.CHECKPOINT)
        targets = send_to.page_targets(tabs, txt2img_tab, img2img_tab)
        for tab in generation_tabs:
            save_buttons.add_buttons(services, tab)  # 📂 💾 🗃️ first in the row, as A1111
            send_to.gallery_buttons(services, tab, (targets.img2img, targets.inpaint), checkpoint)
            extras_tab.image_button(tab.gallery, tab.infotexts, tab.output_buttons, tab.name, tabs, extras)
        upscale.add_button(services, txt2img_tab)  # ✨, last in the row as in A1111
        for tab in generation_tabs:
            paste.add_paste_button(services, tab, checkpoint)
        style_lists = styles_ui.build_styles(services, generation_tabs)
        for tab in generation_tabs:  # queues without waiting, last in the toolbar
            queue_panel.add_enqueue_button(services, tab)
        png_info.connect_send_to(
            services, pnginfo, (targets.txt2img, targets.img2img, targets.inpaint), checkpoint
        )
        extras_tab.connect_send(pnginfo.send["extras"], pnginfo.image, tabs, extras)
        options = {**quicksettings, **settings}
        # The tabs' Clip skip sliders start from, and follow, the "Clip skip" setting.
        clip_skip = options.get("CLIP_stop_at_last_layers")
        if clip_skip is not None:
            sliders = [tab.controls["clip_skip"] for tab in generation_tabs]
            clip_skip.change(lambda value: [value] * len(sliders), inputs=clip_skip, outputs=sliders)
        # Another browser (or the API) may have changed settings and styles since the page was built.
        demo.load(
            lambda: [
                *settings_tab.load_updates(services, options),
                *styles_ui.load_updates(services, style_lists),
            ],
            outputs=[*options.values(), *style_lists],
        )
    return demo
