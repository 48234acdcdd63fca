"""Infotext → UI values (the ↙ paste button and PNG Info), and our own images back through PNG Info."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from webui.core.errors import UserError
from webui.core.params import Txt2Img
from webui.services.outputs import embed_infotext
from webui.ui import paste
from webui.ui.generation import GenerationTab
from webui.ui.png_info import read_image_info

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FULL = (
    "a red cube, (shiny:1.2)\nsecond line\nNegative prompt: blurry, low quality\n"
    "Steps: 13, Sampler: Euler, Schedule type: Karras, CFG scale: 6.5, Seed: 4242, Size: 64x96, "
    "Model hash: 0123456789, Model: tiny-b, Clip skip: 2, Version: v1.10.1"
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[object]:
    """An App over two copies of the tiny checkpoint: tiny-sd1 (loaded) and tiny-b."""
    root = tmp_path_factory.mktemp("paste")
    second = root / "tiny-b.safetensors"
    shutil.copy(tiny_sd1_file, second)
    app = make_app(make_data_dir(root / "data", tiny_sd1_file, second))
    app.select_checkpoint("tiny-sd1")
    yield app
    app.jobs.stop()


@pytest.fixture
def toasts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    shown: list[str] = []
    monkeypatch.setattr(gr, "Info", lambda message, *a, **k: shown.append(f"info: {message}"))
    monkeypatch.setattr(gr, "Warning", lambda message, *a, **k: shown.append(f"warning: {message}"))
    return shown


def test_reads_every_field_the_infotext_names() -> None:
    pasted = paste.read(FULL)
    assert pasted.values == {
        "prompt": "a red cube, (shiny:1.2)\nsecond line", "negative_prompt": "blurry, low quality",
        "steps": 13, "sampler_name": "Euler", "scheduler": "Karras", "cfg_scale": 6.5, "seed": 4242,
        "width": 64, "height": 96, "clip_skip": 2, "cfg_rescale": 0.0,
        "subseed": -1, "subseed_strength": 0.0, "seed_resize_from_w": 0, "seed_resize_from_h": 0,
        "tiling": False, "restore_faces": False, "refiner_checkpoint": None,
    }  # fmt: skip
    assert pasted.fields["Model"] == "tiny-b" and pasted.warnings == []


def test_absent_fields_keep_their_value_except_those_a1111_resets() -> None:
    pasted = paste.read("just a prompt\nSteps: 5, Sampler: DPM++ 2M Karras, Seed: 7")
    # Prompts, Clip skip (→ 1), CFG Rescale (→ 0) and Schedule type (→ Automatic) are always set; size
    # and CFG are not.
    assert pasted.values == {
        "prompt": "just a prompt", "negative_prompt": "", "steps": 5, "seed": 7,
        "sampler_name": "DPM++ 2M", "scheduler": "Automatic", "clip_skip": 1, "cfg_rescale": 0.0,
        # no variation keys: no variation (A1111 unticks "Extra", which turns them off)
        "subseed": -1, "subseed_strength": 0.0, "seed_resize_from_w": 0, "seed_resize_from_h": 0,
        "tiling": False,  # A1111 writes "Tiling: True" only when on
        "restore_faces": False,  # "Face restoration: <model>" is written only when on
        "refiner_checkpoint": None,  # A1111 unticks "Refiner" when the infotext has no refiner
    }  # fmt: skip
    assert (
        paste.read("cat\nSteps: 5, Seed: 1, CFG Rescale phi: 0.3").values["cfg_rescale"] == 0.3
    )  # the extension's
    # Without a parameters line everything is prompt, as in A1111.
    assert paste.read("only words, here").values["prompt"] == "only words, here"
    assert "steps" not in paste.read("only words, here").values


def test_an_unreadable_value_is_skipped_with_a_warning_and_the_rest_pasted() -> None:
    pasted = paste.read("cat\nSteps: 9, Sampler: No Such Sampler, CFG scale: 4, Size: huge")
    assert pasted.values["steps"] == 9 and pasted.values["cfg_scale"] == 4.0
    assert "sampler_name" not in pasted.values and "width" not in pasted.values
    assert len(pasted.warnings) == 2
    assert "Sampler not pasted" in pasted.warnings[0] and "Size not pasted" in pasted.warnings[1]


def test_updates_follow_the_controls_and_map_choice_indexes() -> None:
    with gr.Blocks():
        steps = gr.Slider(1, 150, value=20)
        width = gr.Slider(64, 2048, value=512)
        area = gr.Radio(["Whole picture", "Only masked"], type="index")  # labels as values
        fill = gr.Radio([("fill", 0), ("original", 1), ("latent noise", 2)], value=1)  # the params' integers
    pasted = paste.Pasted(values={"steps": 13, "inpaint_full_res": True, "inpainting_fill": 2}, fields={})
    controls = {"steps": steps, "width": width, "inpaint_full_res": area, "inpainting_fill": fill}
    got = paste.updates(controls, pasted)
    assert got[0] == 13 and got[2] == "Only masked"
    assert got[3] == 2 and type(got[3]) is int
    assert got[1] == gr.update()  # no width in the infotext: unchanged


def test_reads_img2img_and_inpaint_fields() -> None:
    text = (
        FULL + ", Denoising strength: 0.35, Mask blur: 6, Inpaint area: Only masked, Masked area padding: 40"
    )
    values = paste.read(text).values
    assert values["denoising_strength"] == 0.35 and values["mask_blur"] == 6
    assert values["inpaint_full_res"] is True and values["inpaint_full_res_padding"] == 40
    # Absent from an inpaint infotext means A1111's default: Masked content "original", Mask mode 0.
    assert values["inpainting_fill"] == 1 and values["inpainting_mask_invert"] == 0
    assert "mask_blur" not in paste.read(FULL).values


def test_checkpoint_is_kept_by_default_and_switched_when_the_option_allows(app, toasts) -> None:
    fields = paste.read(FULL).fields
    before = app.current_checkpoint_title()
    assert app.settings.get("disable_weights_auto_swap") is True
    assert paste.switch_checkpoint(app, fields) is None
    assert app.current_checkpoint_title() == before and "tiny-b" in toasts[-1]
    try:
        app.update_options({"disable_weights_auto_swap": False})
        title = paste.switch_checkpoint(app, fields)
        assert title is not None and title.startswith("tiny-b.safetensors")
        assert app.current_checkpoint_title() == title
        # Pasting the same model again changes nothing.
        assert paste.switch_checkpoint(app, fields) is None
        missing = paste.switch_checkpoint(app, {"Model": "not-here", "Model hash": "ffffffffff"})
        assert missing is None and "not-here" in toasts[-1] and "not available" in toasts[-1]
    finally:
        app.update_options({"disable_weights_auto_swap": True})
        app.select_checkpoint("tiny-sd1")


def test_paste_handler_sets_controls_and_warns_on_empty_text(app, toasts) -> None:
    with gr.Blocks():
        controls = {"prompt": gr.Textbox(), "seed": gr.Number(), "width": gr.Slider(64, 2048)}
        checkpoint = gr.Dropdown(choices=["a"])
        tab = GenerationTab("txt2img", controls, gr.Row(), gr.Row(), gr.Gallery(), gr.Textbox(), gr.State([]))
    handler, outputs = paste.paste_handler(app, tab, checkpoint)
    assert outputs == [*controls.values(), checkpoint]
    got = handler("dog\nSteps: 3, Seed: 99, Size: 128x64")
    assert got[:3] == ["dog", 99, 128] and got[3] == gr.update()
    assert handler("  ") == [gr.update()] * 4 and toasts[-1].startswith("warning: No generation")


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_our_own_image_round_trips_through_png_info_to_identical_parameters(app, fmt: str) -> None:
    params = Txt2Img(
        prompt="a blue sphere, (glossy:1.3), [red:green:0.5]\nline two", negative_prompt="noise: a, b",
        steps=3, cfg_scale=6.5, sampler_name="Euler", scheduler="Karras", seed=31337, width=64, height=96,
        clip_skip=2,
    )  # fmt: skip
    app.update_options({"samples_format": fmt})
    try:
        result = app.generate(params)
    finally:
        app.update_options({"samples_format": "png"})
    assert result.paths[0].endswith(f".{fmt}")
    info = read_image_info(result.paths[0])
    assert info.message == "" and info.text == result.infotexts[0]
    pasted = paste.read(info.text)
    assert pasted.warnings == []
    assert params.replace(**pasted.values) == result.params.replace(sd_model_checkpoint=None)
    assert info.fields["Model"] == app.manager.current_entry().model_name


def test_png_info_explains_images_without_parameters_and_non_images(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    info = read_image_info(plain)
    assert info.text == "" and info.fields == {} and "no generation parameters" in info.message
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(UserError, match="Source: the uploaded file is not an image"):
        read_image_info(text)
    assert read_image_info(None).message == ""


def test_png_info_reads_a1111_jpeg_exif(tmp_path: Path) -> None:
    path = tmp_path / "a1111.jpg"
    path.write_bytes(embed_infotext(Image.new("RGB", (8, 8)), FULL, "jpg"))
    info = read_image_info(path)
    assert info.text == FULL and info.fields["Seed"] == "4242" and info.fields["Version"] == "v1.10.1"


def _click_handler(blocks: gr.Blocks, elem_id: str):
    """The function a button's click runs."""
    button = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    fn = next(f for f in blocks.fns.values() if any(target[0] == button._id for target in f.targets))
    return fn.fn


def test_apply_settings_is_all_or_nothing_and_only_sends_what_the_page_changed(app, toasts) -> None:
    from webui.ui import settings_tab

    with gr.Blocks() as blocks:
        controls = settings_tab.build_settings_tab(app, skip=settings_tab.quicksettings_names(app))
    assert "sd_vae" not in controls and "samples_format" in controls
    apply = _click_handler(blocks, "settings_submit")
    names = list(controls)
    loaded = {name: app.settings.get(name) for name in names}  # what the page was loaded with
    values = {name: settings_tab.current_value(app, name) for name in names}
    config = app.paths.config_file
    before = config.read_text(encoding="utf-8") if config.exists() else None

    bad = {**values, "save_txt": True, "sd_checkpoints_limit": 99}  # above its maximum of 10
    result = apply(loaded, *bad.values())
    assert result[0].startswith("Nothing applied") and "sd_checkpoints_limit" in result[0]
    assert result[1] == loaded and app.settings.get("save_txt") is False
    assert (config.read_text(encoding="utf-8") if config.exists() else None) == before
    assert toasts[-1].startswith("warning: Settings not applied")

    # Meanwhile JPEG quality was changed elsewhere; this page still shows the old value and must not undo it.
    app.update_options({"jpeg_quality": 55})
    try:
        result = apply(loaded, *{**values, "save_txt": True}.values())
        assert result[0] == "1 settings changed: Create a text file with infotext next to every image."
        assert app.settings.get("save_txt") is True and app.settings.get("jpeg_quality") == 55
        assert result[1]["save_txt"] is True and result[1]["jpeg_quality"] == 55
    finally:
        app.update_options({"save_txt": False, "jpeg_quality": 80})
