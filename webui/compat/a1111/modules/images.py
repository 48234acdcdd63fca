"""modules.images: save_image (A1111's signature) and the grid helpers, on our services."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PIL import Image

from webui.services import grids
from webui.services.outputs import embed_infotext, read_infotext


def image_grid(imgs: list[Image.Image], batch_size: int = 1, rows: int | None = None) -> Image.Image:
    rows = rows or max(1, round(math.sqrt(len(imgs))))
    return grids.image_grid(imgs, cols=math.ceil(len(imgs) / rows))


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
