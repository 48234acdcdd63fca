"""Grid images for scripts (X/Y/Z plot, prompt matrix): images in rows and columns with A1111-style
labels, drawn with Pillow. Saving goes through the normal image saving (outputs/*-grids/DATE/)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from webui.core.errors import InvalidParameter

BACKGROUND = "white"
TEXT = "black"


def image_grid(images: Sequence[Image.Image], cols: int, margin: int = 0) -> Image.Image:
    """`images` row by row, `cols` a row (the last row may be short), each cell the first image's size."""
    if not images:
        raise InvalidParameter("a grid needs at least one image")
    if cols < 1:
        raise InvalidParameter(f"a grid needs at least one column, got {cols}")
    width, height = images[0].size
    rows = math.ceil(len(images) / cols)
    grid = Image.new(
        "RGB", (cols * width + (cols - 1) * margin, rows * height + (rows - 1) * margin), BACKGROUND
    )
    for index, image in enumerate(images):
        row, col = divmod(index, cols)
        cell = image if image.size == (width, height) else image.resize((width, height))
        grid.paste(cell.convert("RGB"), (col * (width + margin), row * (height + margin)))
    return grid


def _font(cell_width: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # A1111 scales the legend with the image; at least legible on tiny previews.
    return ImageFont.load_default(size=max(12, min(48, cell_width // 10)))


def _wrapped(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    char_width = max(int(font.getbbox("n")[2]), 1)
    return "\n".join(textwrap.wrap(text, max(width // char_width, 1))) or " "


def _text_size(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont
) -> tuple[int, int]:
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, align="center")
    return round(right - left), round(bottom - top)


def labelled_grid(
    images: Sequence[Image.Image],
    cols: int,
    x_labels: Sequence[str] = (),
    y_labels: Sequence[str] = (),
    margin: int = 0,
) -> Image.Image:
    """image_grid with a label above each column and left of each row (either may be empty: no band)."""
    rows = math.ceil(len(images) / cols) if cols else 0
    grid = image_grid(images, cols, margin)
    if x_labels and len(x_labels) != cols:
        raise InvalidParameter(f"{len(x_labels)} column labels for {cols} columns")
    if y_labels and len(y_labels) != rows:
        raise InvalidParameter(f"{len(y_labels)} row labels for {rows} rows")
    cell_w, cell_h = images[0].size
    font = _font(cell_w)
    probe = ImageDraw.Draw(grid)
    pad = max(4, _text_size(probe, "Ag", font)[1] // 2)
    top_texts = [_wrapped(label, font, cell_w - pad) for label in x_labels]
    left_width = max(cell_w * 3 // 4, 3 * pad) if y_labels else 0
    left_texts = [_wrapped(label, font, left_width - pad) for label in y_labels]
    top = (
        max((_text_size(probe, text, font)[1] for text in top_texts), default=-2 * pad) + 2 * pad
        if x_labels
        else 0
    )
    canvas = Image.new("RGB", (grid.width + left_width, grid.height + top), BACKGROUND)
    canvas.paste(grid, (left_width, top))
    draw = ImageDraw.Draw(canvas)
    for col, text in enumerate(top_texts):
        center = left_width + col * (cell_w + margin) + cell_w // 2
        draw.multiline_text((center, top // 2), text, fill=TEXT, font=font, anchor="mm", align="center")
    for row, text in enumerate(left_texts):
        middle = top + row * (cell_h + margin) + cell_h // 2
        draw.multiline_text(
            (left_width // 2, middle), text, fill=TEXT, font=font, anchor="mm", align="center"
        )
    return canvas


def titled_row(grids: Sequence[Image.Image], titles: Sequence[str], margin: int = 0) -> Image.Image:
    """Grids side by side, each with its title above (the Z axis of an X/Y/Z plot)."""
    if not grids or len(grids) != len(titles):
        raise InvalidParameter(f"{len(titles)} titles for {len(grids)} grids")
    labelled = [labelled_grid([grid], 1, x_labels=[title]) for grid, title in zip(grids, titles)]
    width = sum(image.width for image in labelled) + margin * (len(labelled) - 1)
    canvas = Image.new("RGB", (width, max(image.height for image in labelled)), BACKGROUND)
    x = 0
    for image in labelled:
        canvas.paste(image, (x, 0))
        x += image.width + margin
    return canvas
