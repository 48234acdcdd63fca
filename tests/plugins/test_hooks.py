"""Extension hooks inside real generations (tiny SD1 checkpoint): order and arguments, changes they
make, and isolation of an extension that raises everywhere."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops

from tests.plugins.conftest import extension_module
from webui.core import infotext
from webui.core.params import Txt2Img
from webui.core.requests import Result
from webui.plugins.isolation import ScriptFailed
from webui.services.outputs import read_infotext

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = Txt2Img(
    prompt="a red circle", steps=2, width=64, height=64, sampler_name="Euler", cfg_scale=5, seed=11
)


def recorder_args(tag: str) -> tuple[tuple[str, tuple], ...]:
    return (("Recorder", (tag,)),)


def test_hooks_run_in_order_with_the_right_objects(plugin_app):
    events = extension_module(plugin_app, "Recorder").EVENTS
    assert events[0] == ("model_loaded", "LoadedCheckpoint")  # from load_initial_checkpoint
    events.clear()
    result = plugin_app.generate(SMALL.replace(batch_size=2, alwayson_scripts=recorder_args("t1")))
    names = [event[0] for event in events]
    assert names == [
        "process", "process_batch", "cfg_denoiser", "cfg_denoiser",
        "postprocess_image", "postprocess_image",
        "before_image_saved", "image_saved", "before_image_saved", "image_saved", "postprocess",
    ]  # fmt: skip
    assert events[0] == ("process", "Processing", "a red circle", "t1")
    assert events[1] == ("process_batch", 0, ("a red circle",) * 2, (11, 12))
    steps = [event for event in events if event[0] == "cfg_denoiser"]
    # each model pass: step i of 2; CFG batch of 2 images → 4 latents, unconditional half split off
    assert [event[1:3] for event in steps] == [(0, 2), (1, 2)]
    assert [(event[3][:2], event[4][0], event[5]) for event in steps] == [((4, 4), 2, True)] * 2
    sigmas = [event[6] for event in steps]
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[-1] > 0
    assert [event[1] for event in events if event[0] == "postprocess_image"] == [(64, 64)] * 2
    # before saving the file does not exist yet; its infotext already has what process() added
    before = [event for event in events if event[0] == "before_image_saved"]
    assert [event[1] for event in before] == [None, None]
    assert all("Recorder: t1" in event[2] for event in before)
    saved = [event[1] for event in events if event[0] == "image_saved"]
    assert saved == [path.rsplit("/", 1)[-1] for path in result.paths]
    assert events[-1] == ("postprocess", 2, (11, 12), 2)
    assert all("Recorder: t1" in text for text in result.infotexts)
    assert read_infotext(Image.open(result.paths[0])) == result.infotexts[0]


@pytest.fixture(scope="module")
def plain(plugin_app) -> Result:
    """SMALL with no script arguments given (generation is deterministic: the tests compare with it)."""
    return plugin_app.generate(SMALL, save_images=False)


def test_missing_script_args_take_the_ui_defaults(plain):
    assert infotext.parse(plain.infotexts[0])["Recorder"] == "default-tag"
    assert "Watermark" not in plain.infotexts[0]  # its checkbox is off by default


def test_cfg_denoiser_changes_what_the_model_sees(plugin_app, plain):
    module = extension_module(plugin_app, "Recorder")
    module.CHANGE["x_scale"] = 0.0
    try:
        changed = plugin_app.generate(SMALL, save_images=False).images[0]
    finally:
        module.CHANGE.clear()
    assert ImageChops.difference(plain.images[0], changed).getbbox() is not None


def test_watermark_example_stamps_and_writes_infotext(plugin_app, plain):
    marked = plugin_app.generate(
        SMALL.replace(alwayson_scripts=(("watermark", (True, "hello")),)), save_images=False
    )
    assert "Watermark: hello" in marked.infotexts[0]
    box = ImageChops.difference(plain.images[0], marked.images[0]).getbbox()
    assert box is not None and box[2] == 64 and box[3] == 64  # only the bottom-right corner changed
    assert box[0] > 16 and box[1] > 32


def test_raising_extension_is_isolated_and_reported(plugin_app):
    errors = plugin_app.plugins.errors
    wheres = {(error.extension, error.where) for error in errors.entries()}
    assert ("broken", "import scripts/a_import.py") in wheres
    traceback = next(e.traceback for e in errors.entries() if e.where == "import scripts/a_import.py")
    assert "a_import.py" in traceback and "broken on purpose" in traceback
    before = errors.count
    result = plugin_app.generate(SMALL.replace(alwayson_scripts=recorder_args("t2")))
    # the others' work is intact: the image, the recorder's infotext entry, the saved file
    assert len(result.images) == 1 and "Recorder: t2" in result.infotexts[0] and len(result.paths) == 1
    new = {error.where for error in errors.entries(after=before)}
    assert {"Broken.process", "Broken.postprocess_image", "on_image_saved", "on_cfg_denoiser"} <= new
    assert any(
        "Extension broken failed in Broken.process: RuntimeError: process boom" == w for w in result.warnings
    )


def test_a_failing_selected_script_fails_its_job_with_a_clear_error(plugin_app):
    with pytest.raises(ScriptFailed, match="broken failed in BrokenRun.run: ZeroDivisionError: run boom"):
        plugin_app.generate(SMALL.replace(script_name="broken run"), save_images=False)
    assert plugin_app.select_vae("Automatic") == "Automatic"  # the queue goes on
