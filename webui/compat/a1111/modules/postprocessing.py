"""modules.postprocessing: run_extras (A1111's Extras tab as a function) for one image, upscaled by our
upscalers. Face restoration and folder batches are the Extras tab's own here: asked for, they fail with
a message that says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image

from webui.compat.a1111.modules import _app
from webui.compat.a1111.modules.ui_common import plaintext_to_html

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins


def _run_extras(
    plugins: Plugins,
    extras_mode: int,
    resize_mode: int,
    image: Image.Image | None,
    image_folder: Any = None,
    input_dir: str = "",
    output_dir: str = "",
    show_extras_results: bool = True,
    gfpgan_visibility: float = 0.0,
    codeformer_visibility: float = 0.0,
    codeformer_weight: float = 0.0,
    upscaling_resize: float = 2.0,
    upscaling_resize_w: int = 512,
    upscaling_resize_h: int = 512,
    upscaling_crop: bool = True,
    extras_upscaler_1: str = "None",
    extras_upscaler_2: str = "None",
    extras_upscaler_2_visibility: float = 0.0,
    upscale_first: bool = False,
    save_output: bool = True,
) -> tuple[list[Image.Image], str, str]:
    """([the result], its info as HTML, '') for a single image (extras_mode 0) scaled by
    `upscaling_resize` (resize_mode 0), upscaler 2 blended over upscaler 1 by its visibility."""
    if extras_mode != 0 or image is None:
        raise ValueError("modules.postprocessing.run_extras: only a single image is supported here")
    if resize_mode != 0:
        raise ValueError(
            "modules.postprocessing.run_extras: only 'Scale by' (resize_mode 0) is supported here"
        )
    if gfpgan_visibility or codeformer_visibility:
        raise ValueError("modules.postprocessing.run_extras: face restoration is the Extras tab's own here")
    upscalers = plugins.upscalers
    if upscalers is None:
        raise ValueError("modules.postprocessing.run_extras: this App has no upscalers")
    result = upscalers.upscale(image, extras_upscaler_1, upscaling_resize)
    if extras_upscaler_2 != "None" and extras_upscaler_2_visibility > 0:
        second = upscalers.upscale(image, extras_upscaler_2, upscaling_resize)
        result = Image.blend(result.convert("RGB"), second.convert("RGB"), extras_upscaler_2_visibility)
    info = f"Postprocess upscale by: {upscaling_resize}, Postprocess upscaler: {extras_upscaler_1}"
    if extras_upscaler_2 != "None" and extras_upscaler_2_visibility > 0:
        info += f", Postprocess upscaler 2: {extras_upscaler_2}"
    return [result], plaintext_to_html(info), ""


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "run_extras": lambda plugins: lambda *args, **kwargs: _run_extras(plugins, *args, **kwargs),
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)
