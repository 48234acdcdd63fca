"""Poor man's outpainting (A1111's built-in img2img script, written on the plugin API).

The picture is put on a canvas grown by "Pixels to expand" on each chosen side (the grown size rounded
up to multiples of 64, as A1111: webui/core/outpaint.py), the new border masked, the mask's edge
2 × "Mask blur" pixels inside the old picture and blurred by twice "Mask blur". The canvas is cut into
tiles of the img2img Width x Height overlapping by "Pixels to expand" (A1111's grid); each tile that
touches the new border is inpainted with the chosen "Masked content" (fill / original / latent noise /
latent nothing), the seed counting up a tile, and the tiles are pasted back in order, each cross-faded
over the tiles before it where they overlap. Batch count and size are not used (as A1111).

Infotext: A1111 writes no keys of its own for this script; the picture carries its first tile's
infotext (Mask blur, Masked content, Denoising strength, Size of a tile, ...).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from webui.core import outpaint
from webui.plugins import api

TITLE = "Poor man's outpainting"
MAX_MASK_BLUR = 64  # the mask blur field's limit (A1111's slider goes to 64, doubled here)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where the tiles along one side start (A1111's grid): as few tiles as cover `length` with at
    least `overlap` shared pixels, spread evenly, the last one flush with the end."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [min(int(index * step), length - tile) for index in range(count)]


def _ramp(length: int, shared: int) -> np.ndarray:
    """A tile's weight along one side: rising over the `shared` pixels it overlaps the tile before."""
    weights = np.ones(length)
    if shared > 0:
        weights[:shared] = (np.arange(shared) + 1) / (shared + 1)
    return weights


def paste_tiles(
    canvas: Image.Image, tiles: dict[tuple[int, int], Image.Image], xs: list[int], ys: list[int]
) -> Image.Image:
    """`tiles` ((row, column) → image) pasted onto `canvas` row by row, each cross-faded over what the
    tiles before it (or the canvas, where a tile was left out) put in the part they share."""
    pixels = np.asarray(canvas, dtype=np.float64).copy()
    for (row, col), tile in sorted(tiles.items()):
        x, y, (width, height) = xs[col], ys[row], tile.size
        shared_x = xs[col - 1] + width - x if col > 0 else 0
        shared_y = ys[row - 1] + height - y if row > 0 else 0
        alpha = (_ramp(height, shared_y)[:, None] * _ramp(width, shared_x)[None, :])[..., None]
        below = pixels[y : y + height, x : x + width]
        pixels[y : y + height, x : x + width] = below * (1 - alpha) + np.asarray(tile, np.float64) * alpha
    return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8), "RGB")


class PoorMansOutpainting(api.Script):
    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        return is_img2img

    def ui(self, is_img2img: bool) -> list:
        import gradio as gr

        from webui.core.params import MASKED_CONTENT

        def elem(name: str) -> str:
            return f"img2img_script_poor_mans_outpainting_{name}"

        pixels = gr.Slider(8, 256, value=128, step=8, label="Pixels to expand", elem_id=elem("pixels"))
        blur = gr.Slider(0, 64, value=4, step=1, label="Mask blur", elem_id=elem("mask_blur"))
        fill = gr.Radio(
            list(MASKED_CONTENT), value="fill", type="index", label="Masked content",
            elem_id=elem("inpainting_fill"),
        )  # fmt: skip
        direction = gr.CheckboxGroup(
            list(outpaint.DIRECTIONS), value=list(outpaint.DIRECTIONS), label="Outpainting direction",
            elem_id=elem("direction"),
        )  # fmt: skip
        return [pixels, blur, fill, direction]  # A1111's order (its API script_args)

    def run(
        self, p: api.Processing, pixels: float = 128, mask_blur: float = 4, inpainting_fill: object = 0,
        direction: object = outpaint.DIRECTIONS,
    ) -> api.Processed:  # fmt: skip
        amount = outpaint.pixels(pixels, TITLE)
        blur = int(outpaint.number(mask_blur, "Mask blur", 0, 64, TITLE))
        fill = outpaint.masked_content(inpainting_fill, TITLE)
        sides = outpaint.directions(direction, TITLE)
        if not p.init_images:
            raise api.InvalidParameter(f"{TITLE}: needs an img2img input image")
        api.fix_seed(p)
        source = p.init_images[0].convert("RGB")
        margins = outpaint.margins(source.size, amount, sides)
        width, height = margins.grown(source.size)
        canvas = Image.new("RGB", (width, height))
        canvas.paste(source, (margins.left, margins.up))
        keep = (  # the old picture, less 2 x blur pixels along each new side
            margins.left + (2 * blur if margins.left else 0),
            margins.up + (2 * blur if margins.up else 0),
            width - margins.right - (2 * blur if margins.right else 0),
            height - margins.down - (2 * blur if margins.down else 0),
        )
        mask = np.full((height, width), 255, dtype=np.uint8)
        mask[keep[1] : keep[3], keep[0] : keep[2]] = 0
        mask_image = Image.fromarray(mask, "L")
        # tiles no larger than the canvas, in whole latent pixels (a side that does not grow keeps its length)
        tile_w, tile_h = min(p.width, width // 8 * 8), min(p.height, height // 8 * 8)
        for label, tile, length in (("Width", tile_w, width), ("Height", tile_h, height)):
            if length > tile and amount >= tile:
                raise api.InvalidParameter(
                    f"{TITLE}: the tiles overlap by Pixels to expand ({amount}), which must be below the "
                    f"tile {label} ({tile}); raise {label} or lower Pixels to expand"
                )
        xs, ys = tile_starts(width, tile_w, amount), tile_starts(height, tile_h, amount)
        inside = (margins.left, margins.up, width - margins.right, height - margins.down)
        work = [
            (row, col)
            for row, y in enumerate(ys)
            for col, x in enumerate(xs)
            if not (x >= inside[0] and y >= inside[1] and x + tile_w <= inside[2] and y + tile_h <= inside[3])
        ]
        p.mask_blur = min(blur * 2, MAX_MASK_BLUR)
        p.inpainting_fill, p.inpaint_full_res, p.inpainting_mask_invert, p.resize_mode = fill, False, 0, 0
        p.width, p.height, p.batch_size, p.n_iter = tile_w, tile_h, 1, 1
        p.do_not_save_samples = True  # the grown picture is saved, not its tiles
        painted: dict[tuple[int, int], Image.Image] = {}
        first: tuple[str, int] | None = None
        interrupted = False
        for row, col in work:
            box = (xs[col], ys[row], xs[col] + tile_w, ys[row] + tile_h)
            p.init_images, p.mask = (canvas.crop(box),), mask_image.crop(box)
            processed = api.process_images(p)
            if processed.interrupted or not processed.images:
                interrupted = True
                break
            first = first or (processed.infotexts[0], processed.seed)
            painted[row, col] = processed.images[0]
            p.seed = processed.seed + 1
        info, seed = first or ("", p.seed)
        combined = paste_tiles(canvas, painted, xs, ys)
        path = api.save_image(p, combined, info, seed) if not interrupted else None
        return api.Processed(
            p,
            [combined],
            infotexts=[info],
            seeds=[seed],
            paths=[path] if path else [],
            interrupted=interrupted,
        )
