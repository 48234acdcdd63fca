"""A1111's per-batch hooks (webui/compat/a1111/batch_hooks.py) with the fixture "Batch tools":
postprocess_batch sees each batch as one (B, 3, H, W) tensor in [0, 1]; postprocess_batch_list may
replace, drop or add images, and what it leaves is what is saved, shown and returned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from webui.core import infotext
from webui.core.params import Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BATCH = Txt2Img(
    prompt="a red circle",
    steps=2,
    width=64,
    height=64,
    sampler_name="Euler",
    cfg_scale=5,
    seed=7,
    batch_size=2,
)


def tools(app):
    return next(loaded.script for loaded in app.plugins.scripts if loaded.script.title() == "Batch tools")


def with_mode(mode, **changes):
    return BATCH.replace(alwayson_scripts=(("Batch tools", (mode,)),), **changes)


@pytest.fixture(scope="module")
def plain(compat_app):
    return compat_app.generate(BATCH, save_images=False)


def pixels(image):
    return np.asarray(image.convert("RGB"))


def test_postprocess_batch_gets_each_batch_as_one_tensor(compat_app):
    tools(compat_app).batches_seen.clear()
    compat_app.generate(with_mode("Mirror", n_iter=2), save_images=False)
    seen = tools(compat_app).batches_seen
    assert [(number, shape) for number, shape, _, _ in seen] == [(0, (2, 3, 64, 64)), (1, (2, 3, 64, 64))]
    assert all(0.0 <= lowest < highest <= 1.0 for _, _, lowest, highest in seen)


def test_replaced_images_are_saved_and_returned(compat_app, plain):
    result = compat_app.generate(with_mode("Mirror"), save_images=True)
    images, paths = result.images[-2:], [path for path in result.paths if "-grids" not in path]  # grid first
    assert len(paths) == 2 and list(result.seeds)[-2:] == [7, 8]
    for mirrored, original, path in zip(images, plain.images, paths):
        assert np.array_equal(pixels(mirrored), pixels(ImageOps.mirror(original)))
        assert np.array_equal(pixels(Image.open(Path(path))), pixels(mirrored))
    assert result.infotexts[-2:] == plain.infotexts


def test_a_dropped_image_takes_its_seed_and_infotext_along(compat_app, plain):
    result = compat_app.generate(with_mode("Keep last"), save_images=True)
    assert len(result.images) == len(result.paths) == 1
    assert list(result.seeds) == [8]
    assert infotext.parse(result.infotexts[0])["Seed"] == "8"
    assert np.array_equal(pixels(result.images[0]), pixels(plain.images[1]))


def test_an_added_image_is_kept_with_the_seed_the_script_gave(compat_app, plain):
    result = compat_app.generate(with_mode("Add negative"), save_images=False)
    assert list(result.seeds) == [7, 8, 8]
    assert np.array_equal(pixels(result.images[2]), 255 - pixels(plain.images[1]))
    assert [infotext.parse(text)["Seed"] for text in result.infotexts] == ["7", "8", "8"]


def test_scripts_without_batch_hooks_leave_the_batch_untouched(compat_app, plain):
    result = compat_app.generate(with_mode("Off"), save_images=False)
    assert all(np.array_equal(pixels(a), pixels(b)) for a, b in zip(result.images, plain.images))


def test_postprocess_image_after_composite_changes_the_kept_image(compat_app, plain):
    mark = next(
        loaded.script for loaded in compat_app.plugins.scripts if loaded.script.title() == "Corner mark"
    )
    mark.calls.clear()
    result = compat_app.generate(
        BATCH.replace(alwayson_scripts=(("Corner mark", (True,)),)), save_images=False
    )
    assert mark.calls == ["postprocess_image", "postprocess_image_after_composite"] * 2
    for marked, original in zip(result.images, plain.images):
        assert not pixels(marked)[:8, :8].any()
        assert np.array_equal(pixels(marked)[8:], pixels(original)[8:])
