"""The fixture "Grid tools": on_image_grid through modules.images.image_grid, modules.extras.run_pnginfo,
modules.postprocessing.run_extras, modules.ui_common (refresh button, output panel) and modules.ui, and
A1111 options this program has no setting for (opts.outdir_init_images)."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from webui.core import infotext
from webui.core.params import Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

THREE = Txt2Img(
    prompt="a red circle", steps=2, width=64, height=64, sampler_name="Euler", cfg_scale=5, seed=7,
    batch_size=3, script_name="Grid tools", script_args=(True,),
)  # fmt: skip


def test_grid_callback_pnginfo_and_extras_upscale(compat_app):
    result = compat_app.generate(THREE, save_images=False)
    grid, upscaled = result.images
    assert grid.size == (3 * 64, 64)  # image_grid asked for 2 rows; on_image_grid made it one
    assert upscaled.size == (2 * 3 * 64, 2 * 64)
    assert infotext.parse(result.infotexts[0])["Seed"] == "7"  # read back from the saved grid's file
    info_html, items_html = result.infotexts[1].split("|")
    assert "Postprocess upscaler: Lanczos" in info_html
    assert items_html.startswith("<div><p><b>parameters</b></p><p>a red circle")


def test_the_extension_tab_with_output_panel_and_refresh_button_builds(compat_app):
    tabs = [tab for tab in compat_app.plugins.ui_tabs() if tab.title == "Grid tools"]
    assert len(tabs) == 1
    assert not [e for e in compat_app.plugins.errors.entries() if e.extension == "sd-webui-grid-tools"]
    blocks = tabs[0].blocks
    ids = {getattr(block, "elem_id", None) for block in blocks.blocks.values()}
    assert {"grid_tools_gallery", "html_info_grid_tools", "html_log_grid_tools", "grid_tools_refresh"} <= ids


def test_refresh_button_calls_the_method_and_updates_the_component():
    from webui.compat.a1111.modules import ui_common

    calls = []
    with gr.Blocks() as blocks:
        names = gr.Dropdown(choices=["a"], value="a")
        button = ui_common.create_refresh_button(names, lambda: calls.append(1), {"choices": ["a", "b"]}, "r")
    handler = next(fn for fn in blocks.fns.values() if fn.targets[0][0] == button._id)
    assert handler.fn()["choices"] == ["a", "b"] and calls == [1]
    assert [block._id for block in handler.outputs] == [names._id]


def test_image_grid_outside_extension_calls_needs_no_app():
    from webui.compat.a1111.modules import images

    grid = images.image_grid([Image.new("RGB", (8, 8))] * 4)
    assert grid.size == (16, 16)


def test_a1111_only_options_read_as_a1111_defaults_and_can_be_set(compat_app):
    opts = compat_app.plugins.compat.modules["shared"].opts
    assert opts.outdir_init_images == "outputs/init-images"
    opts.outdir_init_images = "elsewhere"
    try:
        assert compat_app.plugins.compat.modules["shared"].opts.outdir_init_images == "elsewhere"
    finally:
        opts.outdir_init_images = "outputs/init-images"
    with pytest.raises(AttributeError, match="no option named 'no_such_option'"):
        _ = opts.no_such_option


def test_list_scripts_names_the_loaded_extensions_files(compat_app):
    listed = compat_app.plugins.compat.modules["scripts"].list_scripts("scripts", ".py")
    folder = compat_app.plugins.extension("sd-webui-grid-tools").path
    assert (str(folder), "grid_tools.py", str(folder / "scripts" / "grid_tools.py")) in listed
    assert all(entry.path.endswith(".py") for entry in listed)


def test_chained_events_accept_gradio_3_js(compat_app):
    with gr.Blocks() as blocks:
        button = gr.Button()
        button.click(lambda: None).then(lambda: None, _js="() => 1")
    assert [fn.js for fn in blocks.fns.values()] == [None, "() => 1"]
