"""Tiled inference: run an image model over overlapping tiles and blend them, so memory stays bounded by
the tile size whatever the image size.

Tiles are spread evenly so neighbours overlap by at least `overlap` input pixels. Inside an overlap the two
tiles are cross-faded with linear weights that sum to one; everywhere else a pixel comes from one tile
alone, so a model whose receptive field is smaller than the overlap gives there exactly what an untiled
run gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from webui.core.errors import Interrupted

ImageModel = Callable[[torch.Tensor], torch.Tensor]
TileCallback = Callable[[int, int], None]  # (tiles done, tiles in all)


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of the tiles along one side: one tile when it fits, else evenly spaced tiles that
    overlap their neighbours by at least `overlap`."""
    if tile <= 0 or length <= tile:
        return [(0, length)]
    overlap = min(max(overlap, 0), tile // 2)
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    return [(start, start + tile) for start in starts]


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    return len(tile_spans(height, tile, overlap)) * len(tile_spans(width, tile, overlap))


def _ramp_weights(spans: list[tuple[int, int]], index: int, scale: int) -> torch.Tensor:
    """Blend weights (output pixels) along one side of tile `index`: rising over the overlap with the
    previous tile, falling over the overlap with the next one, 1 elsewhere."""
    start, end = spans[index]
    positions = torch.arange(start * scale, end * scale, dtype=torch.float32) + 0.5
    weights = torch.ones_like(positions)
    if index > 0:
        left_end = spans[index - 1][1] * scale
        weights = torch.minimum(weights, (positions - start * scale) / (left_end - start * scale))
    if index < len(spans) - 1:
        right_start = spans[index + 1][0] * scale
        weights = torch.minimum(weights, (end * scale - positions) / (end * scale - right_start))
    return weights.clamp_(min=0.0)


def run_tiled(
    model: ImageModel,
    image: torch.Tensor,
    scale: int,
    tile: int,
    overlap: int,
    on_tile: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """`model(image)` for a (1, C, H, W) image computed tile by tile; `scale` is the model's output/input
    size ratio. `on_tile` is called after each tile; `should_stop` is asked before each tile and raises
    Interrupted when it answers True. The result has the image's dtype and device."""
    _, _, height, width = image.shape
    rows, columns = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    if len(rows) == 1 and len(columns) == 1:
        if should_stop is not None and should_stop():
            raise Interrupted
        whole = model(image)
        if on_tile is not None:
            on_tile()
        return whole
    result: torch.Tensor | None = None
    total = torch.zeros(1, 1, height * scale, width * scale, dtype=torch.float32, device=image.device)
    for row, (top, bottom) in enumerate(rows):
        row_weights = _ramp_weights(rows, row, scale).to(image.device)
        for column, (left, right) in enumerate(columns):
            if should_stop is not None and should_stop():
                raise Interrupted
            out = model(image[:, :, top:bottom, left:right]).float()
            if result is None:  # the model decides the output channels
                result = torch.zeros(
                    1, out.shape[1], *total.shape[2:], dtype=torch.float32, device=image.device
                )
            weights = row_weights[:, None] * _ramp_weights(columns, column, scale).to(image.device)[None, :]
            window = (
                slice(None),
                slice(None),
                slice(top * scale, bottom * scale),
                slice(left * scale, right * scale),
            )
            result[window] += out * weights
            total[window] += weights
            if on_tile is not None:
                on_tile()
    assert result is not None
    return (result / total).to(image.dtype)
