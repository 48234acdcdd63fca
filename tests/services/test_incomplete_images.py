"""Interrupt/Skip and saving (issue 20 #5, issue 21 #19): an image cut short is shown but not saved, unless
"Save incomplete images" is on, and then its infotext says where it stopped."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from webui.core.params import Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    app = make_app(make_data_dir(tmp_path_factory.mktemp("incomplete-data"), tiny_sd1_file))
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


def cut_short(app: Any, seed: int, action: str) -> Any:
    """A 3-batch job stopped by `action` ("interrupt" or "skip") in its second batch; its result."""
    params = Txt2Img(prompt="cut", seed=seed, steps=12, width=64, height=64, n_iter=3)
    job = app.services.generation.submit(params)
    deadline = time.monotonic() + 120
    while job.progress().state["job_no"] < 1 or job.progress().state["sampling_step"] < 2:
        assert time.monotonic() < deadline and not job.done
        time.sleep(0.02)
    getattr(app.jobs, action)()
    return job.wait(120)


def saved(app: Any) -> dict[int, str]:
    """Seed → infotext of the images on disk (then removed, for the next test)."""
    found = {}
    for path in app.paths.outputs_dir.glob("txt2img-images/*/*.png"):
        found[int(path.stem.split("-")[1])] = Image.open(path).info["parameters"]
        path.unlink()
    return found


def test_interrupted_image_is_shown_but_not_saved(app):
    result = cut_short(app, 100, "interrupt")
    images = result.seeds[result.index_of_first_image :]  # after the batch grid
    assert result.interrupted and list(images) == [100, 101]  # the finished image and the cut one
    texts = saved(app)
    assert list(texts) == [100]  # only the finished one is on disk
    assert "Incomplete" not in texts[100]


def test_skipped_image_is_not_saved_but_the_next_batches_are(app):
    result = cut_short(app, 200, "skip")
    assert not result.interrupted and list(result.seeds[result.index_of_first_image :]) == [200, 201, 202]
    assert sorted(saved(app)) == [200, 202]


def test_save_incomplete_images_setting_saves_them_marked(app):
    app.settings.update({"save_incomplete_images": True})
    try:
        cut_short(app, 300, "interrupt")
    finally:
        app.settings.update({"save_incomplete_images": False})
    texts = saved(app)
    assert sorted(texts) == [300, 301]
    assert "Incomplete" not in texts[300]
    assert re.search(r"Steps: 12, .*, Incomplete: interrupted at step \d+/12$", texts[301])
