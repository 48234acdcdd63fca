"""Issue 21 #8: X/Y/Z values and the plot's size are checked before the first image (a 4xx at once,
not a job that runs for hours), and an interrupted plot answers with the images made instead of building
its grid."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import make_data_dir
from tests.security.servers import served
from webui.core.params import Txt2Img
from webui.services.job import JobStatus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    data = make_data_dir(tmp_path_factory.mktemp("xyz"), tiny_sd1_file)
    with served(data, "--nowebui", load_model=True) as (app, url, _):
        # the first script run builds the scripts' default arguments (imports gradio): not what is timed
        warm_up = Txt2Img(
            prompt="w", steps=1, width=64, height=64, script_name="X/Y/Z plot", script_args=("Seed", "1")
        )
        app.generate(warm_up, save_images=False)
        yield app, url


def plot(x: tuple[str, str], y: tuple[str, str] = ("Nothing", ""), **fields: Any) -> dict[str, Any]:
    args = [*x, *y, "Nothing", "", True, False, True, 0]
    return {"prompt": "p", "steps": 1, "width": 64, "height": 64, **fields, "script_name": "X/Y/Z plot",
            "script_args": args}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (plot(("Steps", "1-100000")), "has 100000 values"),
        (plot(("Seed", "1-60"), ("Steps", "1-50")), "60 x 50 x 1 = 3000 images"),
        (plot(("Seed", "1-40"), width=512), "the grid"),
        (plot(("Steps", "1, 2, 999")), "999"),
    ],
)
def test_a_plot_too_large_or_with_a_bad_value_is_refused_before_the_first_image(server, body, reason):
    app, url = server
    before = list(app.paths.outputs_dir.rglob("*.png"))
    start = time.perf_counter()
    answer = requests.post(f"{url}/sdapi/v1/txt2img", json=body, timeout=120)
    assert 400 <= answer.status_code < 500 and reason in answer.json()["detail"], answer.text
    assert time.perf_counter() - start < 10
    assert list(app.paths.outputs_dir.rglob("*.png")) == before  # not one image was made


def test_an_interrupted_plot_builds_no_grid(server):
    app, _ = server
    params = Txt2Img(
        prompt="p", steps=40, width=64, height=64, seed=1, script_name="X/Y/Z plot",
        script_args=("Seed", "1, 2, 3, 4", "Nothing", "", "Nothing", "", True, False, True, 0),
    )  # fmt: skip
    job = app.submit(params)
    deadline = time.monotonic() + 120
    while job.progress().state["sampling_step"] < 1 or job.status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    app.jobs.interrupt()
    result = job.wait(120)
    assert len(result.images) < 4  # the cells made before the interrupt, no grid image on top
    assert all(image.size == (64, 64) for image in result.images)  # a grid (with labels) is larger
    assert not list(app.paths.outputs_dir.glob("txt2img-grids/*/*.png"))
