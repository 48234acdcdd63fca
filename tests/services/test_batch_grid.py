"""A1111's batch grid (services.batch_grid): a batch also makes a grid, shown first and saved to the grids
folder in the grid format, with A1111's row rule; not for one picture, and through the API only with
save_images, as A1111."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import make_app, make_data_dir
from webui.core.params import Txt2Img
from webui.services.batch_grid import grid_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize(
    ("count", "batch_size", "n_rows", "prevent_empty", "rows"),
    [
        (4, 2, -1, False, 2),  # about square
        (6, 1, -1, False, 2),  # round(sqrt 6) = 2 rows of 3
        (3, 3, -1, False, 2),  # round(1.73): 2 rows, one empty spot
        (7, 1, -1, True, 1),  # no divisor of 7 from 2 down but 1
        (6, 1, -1, True, 2),
        (6, 3, 0, False, 3),  # 0: as many rows as the batch size
        (3, 1, 5, False, 3),  # never more rows than images
    ],
)
def test_rows_as_a1111(count: int, batch_size: int, n_rows: int, prevent_empty: bool, rows: int) -> None:
    assert grid_rows(count, batch_size, n_rows, prevent_empty) == rows


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    app = make_app(make_data_dir(tmp_path_factory.mktemp("grid-data"), tiny_sd1_file), "--api")
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


def grid_files(app: Any) -> list[tuple[Path, tuple[int, int]]]:
    """The grids on disk and their sizes (then removed, for the next test)."""
    found = []
    for path in sorted(app.paths.outputs_dir.glob("txt2img-grids/*/*")):
        with Image.open(path) as image:
            found.append((path, image.size))
        path.unlink()
    return found


BATCH = Txt2Img(prompt="a grid", seed=40, steps=2, width=64, height=64, batch_size=2, n_iter=2)


def test_a_batch_shows_its_grid_first_and_saves_it(app):
    app.settings.update({"grid_format": "jpg", "n_rows": -1})
    result = app.generate(BATCH)
    assert len(result.images) == 5 and result.index_of_first_image == 1
    grid, images = result.images[0], result.images[1:]
    assert grid.size == (128, 128) and list(result.seeds) == [40, 40, 41, 42, 43]
    # the images in order, row by row
    for index, image in enumerate(images):
        row, col = divmod(index, 2)
        cell = np.asarray(grid.crop((col * 64, row * 64, col * 64 + 64, row * 64 + 64)), dtype=np.int16)
        assert np.abs(cell - np.asarray(image, dtype=np.int16)).max() <= 1
    assert result.infotexts[0] == result.infotexts[1]
    ((path, size),) = grid_files(app)
    assert (path.suffix, size) == (".jpg", (128, 128))
    assert str(path) not in result.paths  # the images' files only


def test_grid_rows_option_and_no_grid_in_gallery(app):
    app.settings.update({"grid_format": "png", "n_rows": 1, "return_grid": False})
    try:
        result = app.generate(BATCH)
    finally:
        app.settings.update({"n_rows": -1, "return_grid": True})
    assert len(result.images) == 4 and result.index_of_first_image == 0
    ((_, size),) = grid_files(app)
    assert size == (256, 64)  # one row of four


def test_no_grid_of_one_picture_nor_without_grid_save(app):
    assert len(app.generate(BATCH.replace(batch_size=1, n_iter=1)).images) == 1
    assert grid_files(app) == []
    app.settings.update({"grid_save": False})
    try:
        result = app.generate(BATCH)
    finally:
        app.settings.update({"grid_save": True})
    assert len(result.images) == 5 and grid_files(app) == []  # shown, not saved
    app.settings.update({"grid_only_if_multiple": False})
    try:
        single = app.generate(BATCH.replace(batch_size=1, n_iter=1))
    finally:
        app.settings.update({"grid_only_if_multiple": True})
    assert len(single.images) == 2 and len(grid_files(app)) == 1


def test_the_api_returns_the_grid_only_with_save_images(app):
    from webui.app import serve_in_thread

    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    body = {"prompt": "api grid", "seed": 7, "steps": 2, "width": 64, "height": 64, "batch_size": 2}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            plain = client.post("/sdapi/v1/txt2img", json=body).json()
            saved = client.post("/sdapi/v1/txt2img", json={**body, "save_images": True}).json()
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(plain["images"]) == 2 and json.loads(plain["info"])["index_of_first_image"] == 0
    assert len(saved["images"]) == 3
    sizes = [Image.open(io.BytesIO(base64.b64decode(image))).size for image in saved["images"]]
    assert sizes == [(128, 64), (64, 64), (64, 64)]
    assert json.loads(saved["info"])["index_of_first_image"] == 1
    assert len(grid_files(app)) == 1
