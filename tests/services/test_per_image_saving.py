"""Each image is saved and shown as its batch finishes (issue 20 #6, issue 21 #6): while a job's later
batches still run, the earlier images are already on disk with their final infotext, and waiters see them."""

from __future__ import annotations

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
    app = make_app(make_data_dir(tmp_path_factory.mktemp("per-image-data"), tiny_sd1_file))
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


def on_disk(app: Any) -> dict[int, str]:
    """Seed → infotext of the images saved so far."""
    return {
        int(path.stem.split("-")[1]): Image.open(path).info["parameters"]
        for path in app.paths.outputs_dir.glob("txt2img-images/*/*.png")
    }


def test_finished_batches_are_saved_and_shown_while_the_job_runs(app):
    params = Txt2Img(prompt="one by one", seed=500, steps=12, width=64, height=64, n_iter=3)
    job = app.services.generation.submit(params)
    deadline = time.monotonic() + 120
    while job.progress().state["job_no"] < 2 or job.progress().state["sampling_step"] < 2:
        assert time.monotonic() < deadline and not job.done, "the job ended before its third batch was seen"
        time.sleep(0.02)
    saved_meanwhile, shown_meanwhile = on_disk(app), job.finished_images()
    assert not job.done
    result = job.wait(120)

    assert sorted(saved_meanwhile) == [500, 501]  # the third image is still being made
    assert [seed for _, _, seed in shown_meanwhile] == [500, 501]
    first = result.index_of_first_image  # after the batch grid
    final = dict(zip(result.seeds[first:], result.infotexts[first:]))
    # what was saved early is what the job finally reports, infotext included
    assert saved_meanwhile == {seed: final[seed] for seed in (500, 501)}
    assert [text for _, text, _ in shown_meanwhile] == [final[500], final[501]]
    assert sorted(on_disk(app)) == [500, 501, 502]
