"""SD upscale (A1111's built-in img2img script, written on the plugin API).

The input is upscaled by "Scale Factor" with the chosen upscaler (a model upscaler or a plain resizer),
cut into tiles of the img2img Width × Height that overlap by "Tile overlap" pixels, each tile redrawn by
img2img (the seed counting up per batch of tiles), and the tiles put back together with their overlaps
blended linearly. Infotext: "SD upscale overlap", "SD upscale upscaler".
"""

from __future__ import annotations

import math

import numpy
from PIL import Image

from webui.plugins import api

TITLE = "SD upscale"


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where the tiles along one side start (A1111's split): as few tiles as cover `length` with at least
    `overlap` shared pixels, spread evenly, the last one flush with the end."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1) if count > 1 else 0
    return [min(int(index * step), length - tile) for index in range(count)]


def _ramp(length: int, tile: int, starts: list[int]) -> numpy.ndarray:
    """Each tile's weight along one side: rising linearly over the part it shares with the tile before,
    falling over the part it shares with the tile after (so overlaps cross-fade), 1 elsewhere."""
    weights = numpy.ones((len(starts), tile), dtype=numpy.float64)
    for index, start in enumerate(starts):
        if index > 0:
            shared = starts[index - 1] + tile - start
            if shared > 0:
                weights[index, :shared] = numpy.minimum(
                    weights[index, :shared], (numpy.arange(shared) + 1) / (shared + 1)
                )
        if index + 1 < len(starts):
            shared = start + tile - starts[index + 1]
            if shared > 0:
                fall = 1 - (numpy.arange(shared) + 1) / (shared + 1)
                weights[index, tile - shared :] = numpy.minimum(weights[index, tile - shared :], fall)
    return weights


def combine(tiles: list[Image.Image], size: tuple[int, int], xs: list[int], ys: list[int]) -> Image.Image:
    """The tiles (row by row) put back into one picture of `size`, overlaps cross-faded."""
    width, height = size
    tile_w, tile_h = tiles[0].size
    total = numpy.zeros((height, width, 3))
    weight = numpy.zeros((height, width, 1))
    col_w, row_w = _ramp(width, tile_w, xs), _ramp(height, tile_h, ys)
    for index, tile in enumerate(tiles):
        row, col = divmod(index, len(xs))
        w = (row_w[row][:, None] * col_w[col][None, :])[:, :, None]
        pixels = numpy.asarray(tile.convert("RGB"), dtype=numpy.float64)
        total[ys[row] : ys[row] + tile_h, xs[col] : xs[col] + tile_w] += pixels * w
        weight[ys[row] : ys[row] + tile_h, xs[col] : xs[col] + tile_w] += w
    return Image.fromarray(numpy.clip(total / weight, 0, 255).round().astype(numpy.uint8))


class SdUpscale(api.Script):
    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        return is_img2img

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        names = api.upscaler_names()
        info = gr.Markdown(
            "Will upscale the image by the selected scale factor; "
            "use width and height sliders to set tile size"
        )
        overlap = gr.Slider(
            0, 256, value=64, step=16, label="Tile overlap", elem_id="img2img_sd_upscale_overlap"
        )
        scale = gr.Slider(
            1.0, 4.0, value=2.0, step=0.05, label="Scale Factor", elem_id="img2img_sd_upscale_scale"
        )
        upscaler = gr.Radio(names, value=names[0], label="Upscaler", elem_id="img2img_sd_upscale_upscaler")
        return [info, overlap, upscaler, scale]  # A1111's order (its API script_args)

    def run(
        self, p: api.Processing, _info: str = "", overlap: float = 64, upscaler: str | int = "None",
        scale: float = 2.0,
    ) -> api.Processed:  # fmt: skip
        names = api.upscaler_names()
        if isinstance(upscaler, int):  # A1111's API sends the radio's index
            upscaler = names[upscaler] if 0 <= upscaler < len(names) else str(upscaler)
        matches = [name for name in names if name.lower() == str(upscaler).lower()]
        if not matches:
            raise api.InvalidParameter(
                f"SD upscale: unknown upscaler {upscaler!r}; valid: {', '.join(names)}"
            )
        if not p.init_images:
            raise api.InvalidParameter("SD upscale: needs an img2img input image")
        overlap, name = int(overlap), matches[0]
        if not 0 <= overlap < min(p.width, p.height):
            raise api.InvalidParameter(f"SD upscale: Tile overlap {overlap} must be below the tile size")
        api.fix_seed(p)
        p.extra_generation_params["SD upscale overlap"] = overlap
        p.extra_generation_params["SD upscale upscaler"] = name
        source = p.init_images[0].convert("RGB")
        big = source if name == "None" else api.upscale(source, name, scale)
        if big.width < p.width or big.height < p.height:
            raise api.InvalidParameter(
                f"SD upscale: the upscaled image {big.width}x{big.height} is smaller than the tile size "
                f"{p.width}x{p.height}; lower Width/Height or raise the Scale Factor"
            )
        xs, ys = tile_starts(big.width, p.width, overlap), tile_starts(big.height, p.height, overlap)
        work = [big.crop((x, y, x + p.width, y + p.height)) for y in ys for x in xs]
        batch_size, repeats, seed = p.batch_size, p.n_iter, p.seed
        p.n_iter, p.do_not_save_samples = 1, True
        results, infotexts, seeds, paths = [], [], [], []
        first_info, interrupted = "", False
        for n in range(repeats):
            p.seed = seed + n
            made: list[Image.Image] = []
            for start in range(0, len(work), batch_size):
                p.init_images = tuple(work[start : start + batch_size])
                p.batch_size = len(p.init_images)
                processed = api.process_images(p)
                first_info = first_info or (processed.infotexts[0] if processed.infotexts else "")
                made += processed.images
                p.seed = processed.seed + 1
                if processed.interrupted or len(processed.images) < p.batch_size:
                    interrupted = True
                    break
            if interrupted:
                break
            combined = combine(made, big.size, xs, ys)
            path = api.save_image(p, combined, first_info, seed + n)
            results.append(combined)
            infotexts.append(first_info)
            seeds.append(seed + n)
            paths += [path] if path else []
        return api.Processed(
            p, results, infotexts=infotexts, seeds=seeds, paths=paths, interrupted=interrupted
        )
