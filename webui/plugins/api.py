"""The plugin API: what an extension's scripts/*.py import (``from webui.plugins import api``).

Everything an extension needs is here: the Script base class and AlwaysVisible, `p` (Processing) and
Processed, process_images(p) for scripts that generate themselves, the callback registrations of A1111's
script_callbacks (on_ui_tabs, on_cfg_denoiser, …), add_option for on_ui_settings, and helpers for grids
and infotexts. See docs/extensions.md for a complete example.

The registration functions add to the App that is loading the calling file (see context.py): call them
at the top level of a script file, or from inside another callback.
"""

from __future__ import annotations

import argparse
import functools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from webui.core import infotext, schema
from webui.core.errors import InvalidParameter, UserError
from webui.core.params import MAX_SEED, GenerationParams, Img2Img, Txt2Img
from webui.plugins.callbacks import CFGDenoiserParams, ImageSaveParams
from webui.plugins.context import current
from webui.plugins.processing import Processed, Processing
from webui.plugins.script import AlwaysVisible, PostprocessImageArgs, Script
from webui.services import upscalers as plain_upscalers
from webui.services.grids import image_grid, labelled_grid, titled_row
from webui.services.option_table import Option

__all__ = [
    "AlwaysVisible", "CFGDenoiserParams", "ImageSaveParams", "InvalidParameter", "ParameterAxis",
    "PostprocessImageArgs", "parameter_axes", "parameter_types",
    "Processed", "Processing", "Script", "UserError", "add_option", "basedir", "cmd_opts", "create_infotext",
    "fix_seed",
    "image_grid", "labelled_grid", "on_app_started", "on_before_image_saved", "on_cfg_denoiser",
    "on_image_saved", "on_infotext_pasted", "on_model_loaded", "on_ui_settings", "on_ui_tabs",
    "opts", "process_images", "random_seed", "save_grid", "save_image", "titled_row", "upscale",
    "upscaler_names",
]  # fmt: skip


@dataclass(frozen=True)
class ParameterAxis:
    """A generation field an X/Y/Z-style script can vary: its axis label, the `p` attribute it sets, the
    type values are read as, which tabs have it, and a check that raises InvalidParameter for a value
    that cannot work (so a whole plot is refused before its first image)."""

    label: str
    field: str
    kind: type
    txt2img: bool
    img2img: bool
    check: Callable[[Any], Any]


def parameter_types(
    txt2img_type: type[GenerationParams] = Txt2Img, img2img_type: type[GenerationParams] = Img2Img
) -> dict[str, type]:
    """Every declared generation field (txt2img's and img2img's) → its type (str, int, float or bool)."""
    return {item.name: item.kind for cls in (txt2img_type, img2img_type) for item in schema.fields(cls)}


def parameter_axes(
    txt2img_type: type[GenerationParams] = Txt2Img, img2img_type: type[GenerationParams] = Img2Img
) -> list[ParameterAxis]:
    """Every declared field with an `axis` (webui/core/params.py), in declaration order."""
    txt2img, img2img = schema.field_map(txt2img_type), schema.field_map(img2img_type)
    found: dict[str, schema.Field] = {item.name: item for item in (*txt2img.values(), *img2img.values())}
    return [
        ParameterAxis(
            label=item.spec.axis,
            field=item.name,
            kind=item.kind,
            txt2img=item.name in txt2img,
            img2img=item.name in img2img,
            check=functools.partial(schema.check, item),
        )
        for item in found.values()
        if item.spec.axis
    ]


def _register(event: str, callback: Callable[..., Any]) -> None:
    active = current()
    active.plugins.callbacks.add(event, active.owner, callback)


def on_app_started(callback: Callable[[Any, Any], None]) -> None:
    """callback(demo: gr.Blocks | None, app: FastAPI) once the server is built: add routes here."""
    _register("app_started", callback)


def on_ui_tabs(callback: Callable[[], list[tuple[Any, str, str]]]) -> None:
    """callback() → [(gr.Blocks, "Tab title", "elem_id")]: each Blocks becomes a tab of the page."""
    _register("ui_tabs", callback)


def on_ui_settings(callback: Callable[[], None]) -> None:
    """callback() at start-up: call add_option(...) there to add options of your own."""
    _register("ui_settings", callback)


def on_before_image_saved(callback: Callable[[ImageSaveParams], None]) -> None:
    """callback(params) before each image file is written: params.image / params.pnginfo may be changed."""
    _register("before_image_saved", callback)


def on_image_saved(callback: Callable[[ImageSaveParams], None]) -> None:
    """callback(params) after each image file is written (params.filename)."""
    _register("image_saved", callback)


def on_cfg_denoiser(callback: Callable[[CFGDenoiserParams], None]) -> None:
    """callback(params) before each model pass: latents (x), sigma, conditioning; replace to change them."""
    _register("cfg_denoiser", callback)


def on_model_loaded(callback: Callable[[Any], None]) -> None:
    """callback(loaded) when a checkpoint becomes the current one (loaded.pipe: the diffusers pipeline)."""
    _register("model_loaded", callback)


def on_infotext_pasted(callback: Callable[[str, dict[str, str]], None]) -> None:
    """callback(infotext, fields) when an infotext is pasted or read from an image: edit fields in place."""
    _register("infotext_pasted", callback)


def add_option(
    name: str,
    default: Any,
    label: str,
    section: str = "Extensions",
    *,
    choices: Sequence[Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> None:
    """An option of your extension, saved in config.json and shown in Settings (from on_ui_settings).

    Read it back with `opts(name)`."""
    active = current()
    choice_tuple = tuple(choices) if choices is not None else None
    active.plugins.settings.add_option(
        Option(name, default, label, section, choices=choice_tuple, minimum=minimum, maximum=maximum)
    )


def opts(name: str) -> Any:
    """The current value of an option (yours or the program's)."""
    return current().plugins.settings.get(name)


def cmd_opts() -> argparse.Namespace:
    """The command-line flags (those an extension's preload.py added included, when launched by launch.py)."""
    return current().plugins.args


def basedir() -> Path:
    """The folder of the extension whose code is running (A1111's scripts.basedir())."""
    return current().owner.path


def process_images(p: Processing) -> Processed:
    """Generate with p's params inside the running job, always-visible scripts' hooks included; the
    images are saved as usual. For Script.run(), which may call it any number of times."""
    run = p.__dict__.get("_run")
    if run is None:
        raise RuntimeError("process_images(p) needs the p a script received from the web UI")
    return run.process_images(p)


def save_grid(p: Processing, image: Image.Image, infotext_text: str, seed: int | None = None) -> str | None:
    """Save a grid under outputs/<tab>-grids/DATE/ with its infotext (when grids are saved); the path."""
    run = p.__dict__.get("_run")
    if run is None:
        raise RuntimeError("save_grid(p, …) needs the p a script received from the web UI")
    return run.save(p, image, infotext_text, p.seed if seed is None else seed, grid=True)


def upscaler_names() -> list[str]:
    """The upscalers of /sdapi/v1/upscalers: "None", the plain resizers, then every model upscaler file."""
    upscalers = current().plugins.upscalers
    return upscalers.upscaler_names() if upscalers is not None else list(plain_upscalers.UPSCALERS)


def upscale(image: Image.Image, upscaler: str, scale: float) -> Image.Image:
    """`image` resized by `scale` (to multiples of 8) with the named upscaler, model upscalers included."""
    upscalers = current().plugins.upscalers
    if upscalers is None:
        return plain_upscalers.upscale(image, upscaler, scale)
    result: Image.Image = upscalers.upscale(image, upscaler, scale)
    return result


def save_image(p: Processing, image: Image.Image, infotext_text: str, seed: int | None = None) -> str | None:
    """Save an image a script made (not a grid) under outputs/<tab>-images/DATE/ with its infotext, as
    process_images saves its own (when images are saved); the path."""
    run = p.__dict__.get("_run")
    if run is None:
        raise RuntimeError("save_image(p, …) needs the p a script received from the web UI")
    return run.save(p, image, infotext_text, p.seed if seed is None else seed)


def random_seed() -> int:
    return random.randrange(MAX_SEED + 1)


def fix_seed(p: Processing) -> None:
    """Replace a random seed (-1) by a concrete one, so that variations of p share it."""
    if p.seed == -1:
        p.seed = random_seed()


def create_infotext(processed: Processed, extra: Mapping[str, Any], index: int = 0) -> str:
    """The infotext of processed's image `index` with `extra` entries added (e.g. for a grid)."""
    if not processed.infotexts:
        return ""
    plain = {
        key: value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
        for key, value in extra.items()
    }
    return infotext.with_extra(processed.infotexts[index], plain)
