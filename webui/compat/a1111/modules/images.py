"""modules.images: save_image (A1111's signature) and the grid helpers, on our services."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PIL import Image

from webui.compat.a1111.modules import _app
from webui.services import grids
from webui.services.outputs import embed_infotext, read_infotext


def image_grid(imgs: list[Image.Image], batch_size: int = 1, rows: int | None = None) -> Image.Image:
    """The images in rows (about a square by default); on_image_grid callbacks may change the images,
    columns and rows first (A1111's ImageGridLoopParams)."""
    from webui.compat.a1111.modules.script_callbacks import ImageGridLoopParams

    rows = min(rows or max(1, round(math.sqrt(len(imgs)))), len(imgs))
    params = ImageGridLoopParams(list(imgs), math.ceil(len(imgs) / rows), rows)
    try:
        compat = _app.compat()
    except RuntimeError:  # outside a call into extension code (its own gradio handler): no App to ask
        compat = None
    if compat is not None:
        compat.run_callbacks("image_grid", params)
    return grids.image_grid(params.imgs[: params.cols * params.rows], cols=params.cols)


def read_info_from_image(image: Image.Image) -> tuple[str | None, dict[str, Any]]:
    return read_infotext(image), dict(image.info)


def save_image(
    image: Image.Image,
    path: str,
    basename: str = "",
    seed: Any = None,
    prompt: str | None = None,
    extension: str = "png",
    info: str | None = None,
    short_filename: bool = False,
    no_prompt: bool = False,
    grid: bool = False,
    pnginfo_section_name: str = "parameters",
    p: Any = None,
    existing_info: dict[str, Any] | None = None,
    forced_filename: str | None = None,
    suffix: str = "",
    save_to_dirs: bool | None = None,
) -> tuple[str, str | None]:
    """Save `image` into `path` as `<forced_filename>` or `<NNNNN>-<basename>-<seed><suffix>` with `info`
    (the infotext) embedded; returns (the file, None) as A1111 does when no .txt is written."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    if forced_filename:
        stem = forced_filename
    else:
        number = len([entry for entry in folder.iterdir() if entry.is_file()])
        parts = [f"{number:05}", basename, "" if seed is None else str(seed)]
        stem = "-".join(part for part in parts if part) + suffix
    target = folder / f"{stem}.{extension.lstrip('.')}"
    data = embed_infotext(image, info or "", extension.lstrip(".").lower())
    target.write_bytes(data)
    return str(target), None
