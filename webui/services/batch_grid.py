"""A1111's batch grid: a job that makes several images (batch count × batch size) also makes one grid of
them, shown first in the gallery ("Show grid in gallery") and saved to the grids folder ("Always save all
generated image grids"), with the rows A1111's "Grid row count" rule gives.

As in A1111 the grid is made only when the job may save a grid at all: always in the UI, and through
the API only when the request says `save_images` (A1111 sets `do_not_save_grid = not save_images`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from webui.core.requests import Result
from webui.services.grids import image_grid
from webui.services.scripting import Saver
from webui.services.settings import Settings


@dataclass(frozen=True)
class GridOptions:
    """A1111's grid options, read once when the job starts."""

    n_rows: int  # -1: about square, 0: the batch size, n: n rows
    prevent_empty_spots: bool  # with -1: rows that divide the image count
    only_if_multiple: bool  # no grid of one picture
    return_grid: bool  # show it first among the images
    fmt: str  # the file format it is saved in

    @classmethod
    def from_settings(cls, settings: Settings) -> GridOptions:
        return cls(
            n_rows=settings.get("n_rows"),
            prevent_empty_spots=settings.get("grid_prevent_empty_spots"),
            only_if_multiple=settings.get("grid_only_if_multiple"),
            return_grid=settings.get("return_grid"),
            fmt=settings.get("grid_format"),
        )


def grid_rows(count: int, batch_size: int, n_rows: int, prevent_empty_spots: bool) -> int:
    """How many rows A1111 gives a grid of `count` images."""
    if n_rows > 0:
        rows = n_rows
    elif n_rows == 0:
        rows = batch_size
    elif prevent_empty_spots:
        rows = math.floor(math.sqrt(count))
        while count % rows:
            rows -= 1
    else:
        rows = round(math.sqrt(count))
    return max(1, min(rows, count))


def add_batch_grid(result: Result, options: GridOptions, allowed: bool, save: Saver | None) -> Result:
    """`result` with its batch grid first when A1111 would show one, and the grid saved through `save`
    (None: this job saves no grid, grid_save off). `allowed`: the job may make a grid at all (the UI
    always, the API with save_images)."""
    images = result.images
    if not allowed or not (options.return_grid or save) or not images:
        return result
    if len(images) < 2 and options.only_if_multiple:
        return result
    rows = grid_rows(len(images), result.params.batch_size, options.n_rows, options.prevent_empty_spots)
    grid = image_grid(images, math.ceil(len(images) / rows))
    text, seed = result.infotexts[0], result.seeds[0]  # the first image's, as A1111's main infotext
    if save is not None:
        save(grid, text, seed)  # result.paths stay the images' (those the image_saved callbacks saw)
    if not options.return_grid:
        return result
    return dataclasses.replace(
        result,
        images=(grid, *images),
        infotexts=(text, *result.infotexts),
        seeds=(seed, *result.seeds),
        subseeds=(result.subseeds[0], *result.subseeds) if result.subseeds else (),
        index_of_first_image=1,
    )
