"""ControlNet preprocessors on drawn images: what each map must show, sizes, resize modes, sliders, and the
errors for annotator weights that are not there."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from webui.core.control_unit import ControlUnit
from webui.core.errors import InvalidParameter, ModelLoadError, ModelNotFound
from webui.engine.controlnet import image_fit
from webui.engine.controlnet import preprocessors as P
from webui.engine.controlnet.annotators import Annotators

NO_WEIGHTS = Annotators([])


def drawn(background: int = 255, ink: int = 0, size: tuple[int, int] = (200, 100)) -> Image.Image:
    """A filled rectangle in the middle (x 60-140, y 30-70) of a plain image."""
    image = Image.new("RGB", size, (background,) * 3)
    ImageDraw.Draw(image).rectangle((60, 30, 139, 69), fill=(ink,) * 3)
    return image


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L")).astype(int)


def test_canny_finds_the_rectangle_outline_at_processor_resolution() -> None:
    edges = grey(P.detect("canny", drawn(), 100, -1, -1, NO_WEIGHTS))
    assert edges.shape == (100, 200)  # short side at processor_res (here the image's own)
    assert set(np.unique(edges)) == {0, 255}
    assert edges[25:75, 55:145].sum() == edges.sum() > 0  # all edges around the rectangle …
    assert edges[35:65, 65:135].sum() == 0  # … none inside it
    bigger = P.detect("canny", drawn(), 200, -1, -1, NO_WEIGHTS)
    assert bigger.size == (400, 200)


def test_canny_thresholds_decide_which_edges_count() -> None:
    faint = drawn(background=130, ink=120)
    assert grey(P.detect("canny", faint, 100, 100, 200, NO_WEIGHTS)).sum() == 0
    assert grey(P.detect("canny", faint, 100, 5, 10, NO_WEIGHTS)).sum() > 0


def test_invert_threshold_and_blur() -> None:
    image = drawn(background=200, ink=40)
    assert np.array_equal(grey(P.detect("invert", image, -1, -1, -1, NO_WEIGHTS)), 255 - grey(image))
    binary = grey(P.detect("threshold", image, 100, 100, -1, NO_WEIGHTS))
    assert np.array_equal(binary, np.where(grey(image) > 100, 255, 0))
    assert grey(P.detect("threshold", image, 100, 220, -1, NO_WEIGHTS)).max() == 0
    soft = grey(P.detect("blur_gaussian", image, 100, 2, -1, NO_WEIGHTS))
    softer = grey(P.detect("blur_gaussian", image, 100, 8, -1, NO_WEIGHTS))
    assert (
        40 < soft[50, 60] < 200
        and np.abs(np.diff(softer, axis=1)).max() < np.abs(np.diff(soft, axis=1)).max()
    )


def test_tile_resample_downsamples_by_its_rate() -> None:
    assert P.detect("tile_resample", drawn(), -1, 2.0, -1, NO_WEIGHTS).size == (100, 50)
    assert np.array_equal(grey(P.detect("tile_resample", drawn(), -1, 1.0, -1, NO_WEIGHTS)), grey(drawn()))


def test_shuffle_moves_content_reproducibly() -> None:
    first, second = (grey(P.detect("shuffle", drawn(), 100, -1, -1, NO_WEIGHTS)) for _ in range(2))
    assert np.array_equal(first, second)
    assert not np.array_equal(first, grey(drawn()))
    assert first.min() < 50 and first.max() > 200  # the same two colours, elsewhere


def test_lineart_standard_lights_up_dark_lines_only() -> None:
    image = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(image).line((20, 64, 108, 64), fill="black", width=3)
    lines = grey(P.detect("lineart_standard", image, 128, -1, -1, NO_WEIGHTS))
    assert lines[63:66, 30:98].min() > 100
    assert lines[:40].max() < 20 and lines[90:].max() < 20


def test_rgba_and_grey_inputs_become_rgb() -> None:
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # transparent: white, as sd-webui-controlnet
    assert grey(P.detect("none", rgba, -1, -1, -1, NO_WEIGHTS)).min() == 255
    assert P.detect("invert", Image.new("L", (64, 64), 10), -1, -1, -1, NO_WEIGHTS).mode == "RGB"


def test_pixel_perfect_resolution_follows_the_resize_mode() -> None:
    assert image_fit.pixel_perfect_resolution((200, 100), (512, 512), "Crop and Resize") == 512
    assert image_fit.pixel_perfect_resolution((200, 100), (512, 512), "Just Resize") == 512
    assert image_fit.pixel_perfect_resolution((200, 100), (512, 512), "Resize and Fill") == 256
    assert image_fit.pixel_perfect_resolution((1024, 768), (512, 384), "Crop and Resize") == 384


def test_resize_modes_fit_the_map_to_the_output_size() -> None:
    wide = np.zeros((100, 200, 3), dtype=np.uint8)
    wide[:, :50] = 255  # a white band on the left quarter
    stretched = image_fit.fit(wide, (100, 100), "Just Resize")
    assert (
        stretched.shape == (100, 100, 3) and stretched[:, :20].min() == 255 and stretched[:, 30:].max() == 0
    )
    cropped = image_fit.fit(wide, (100, 100), "Crop and Resize")  # the centre square: the band is cut off
    assert cropped.shape == (100, 100, 3) and cropped.max() == 0
    filled = image_fit.fit(np.full((100, 200, 3), 90, dtype=np.uint8), (100, 100), "Resize and Fill")
    assert filled.shape == (100, 100, 3) and filled.min() == filled.max() == 90  # border colour fills


def test_two_valued_maps_stay_two_valued_when_resized() -> None:
    edges = np.zeros((64, 64, 3), dtype=np.uint8)
    edges[::7] = 255
    assert set(np.unique(image_fit.fit(edges, (200, 150), "Just Resize"))) == {0, 255}


def test_resolve_fills_defaults_and_hides_sliders_the_module_lacks() -> None:
    canny = P.resolve(ControlUnit(module="canny", resize_mode=1), (64, 64), (64, 64))
    assert (canny.processor_res, canny.threshold_a, canny.threshold_b) == (512, 100.0, 200.0)
    assert canny.resize_mode == "Crop and Resize"
    none = P.resolve(
        ControlUnit(module="none", processor_res=512, threshold_a=64, threshold_b=64), (64, 64), (64, 64)
    )
    assert (none.processor_res, none.threshold_a, none.threshold_b) == (-1, -1, -1)
    perfect = P.resolve(ControlUnit(module="canny", pixel_perfect=True), (200, 100), (512, 512))
    assert perfect.processor_res == 512
    with pytest.raises(InvalidParameter, match="Canny Low Threshold"):
        P.resolve(ControlUnit(module="canny", threshold_a=300), (64, 64), (64, 64))


def test_control_map_is_at_the_output_size_and_reports_what_ran() -> None:
    control, used = P.control_map(
        ControlUnit(module="canny", model="m", processor_res=100), drawn(), (64, 96), NO_WEIGHTS
    )
    assert control.size == (64, 96) and grey(control).max() == 255
    assert used.threshold_a == 100.0 and used.processor_res == 100


def test_modules_are_found_by_name_or_ui_alias() -> None:
    assert P.find("invert (from white bg & black line)") is P.find("invert")
    assert P.find("softedge_hed").name == "hed"
    assert P.module_list()[0] == "none" and "depth_midas" in P.module_list(alias_names=True)
    with pytest.raises(InvalidParameter, match="Unknown ControlNet preprocessor 'sharpen'"):
        P.find("sharpen")


def test_missing_annotator_weights_name_the_file_and_folder(tmp_path: Path) -> None:
    annotators = Annotators([tmp_path / "models" / "ControlNet" / "annotators", tmp_path / "downloads"])
    with pytest.raises(ModelNotFound) as error:
        P.detect("depth_midas", drawn(), 64, -1, -1, annotators)
    message = str(error.value)
    assert "dpt_hybrid-midas-501f0c75.pt" in message
    assert str(tmp_path / "models" / "ControlNet" / "annotators" / "midas") in message
    assert str(tmp_path / "downloads" / "midas") in message
    (tmp_path / "downloads" / "openpose").mkdir(parents=True)
    (tmp_path / "downloads" / "openpose" / "body_pose_model.pth").write_bytes(b"")
    with pytest.raises(ModelNotFound, match="hand_pose_model.pth, facenet.pth") as error:
        P.detect("openpose_full", drawn(), 64, -1, -1, annotators)
    assert "body_pose_model.pth" not in str(error.value).split("needs")[1].split(":")[0]


@pytest.mark.skipif(importlib.util.find_spec("einops") is not None, reason="einops is installed here")
def test_weights_present_but_packages_missing_names_the_packages(tmp_path: Path) -> None:
    folder = tmp_path / "hed"
    folder.mkdir()
    (folder / "ControlNetHED.pth").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="einops"):
        P.detect("softedge_hed", drawn(), 64, -1, -1, Annotators([tmp_path]))
