"""modules.extras: run_pnginfo, what A1111's PNG Info tab shows of an image (its infotext and every text
item in the file)."""

from __future__ import annotations

import html
from typing import Any

from webui.compat.a1111.modules.images import read_info_from_image


def run_pnginfo(image: Any) -> tuple[str, str | None, str]:
    """('', the infotext, the items as HTML: a bold key and its text each) as A1111 returns them."""
    if image is None:
        return "", "", ""
    infotext, items = read_info_from_image(image)
    shown = {"parameters": infotext, **{key: value for key, value in items.items() if key != "parameters"}}
    parts = [
        f"<div><p><b>{html.escape(str(key))}</b></p><p>{html.escape(str(value))}</p></div>"
        for key, value in shown.items()
        if value is not None and isinstance(value, (str, int, float))
    ]
    return "", infotext, "".join(parts) or "<div><p>Nothing found in the image.</p></div>"
