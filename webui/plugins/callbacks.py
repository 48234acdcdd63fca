"""The callbacks extensions register (A1111's script_callbacks), kept per App, and the objects some of
them receive. Registration goes through webui.plugins.api; calling them through Plugins (isolated)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from webui.core.errors import InvalidParameter
from webui.plugins.context import Owner

if TYPE_CHECKING:
    from PIL import Image

    from webui.plugins.processing import Processing

# Event name → what the callback receives (A1111's signatures):
EVENTS = (
    "app_started",  # (demo: gr.Blocks | None, app: FastAPI): add routes, read the page
    "ui_tabs",  # () -> [(gr.Blocks, title, elem_id), …]: tabs of your own
    "ui_settings",  # (): call webui.plugins.api.add_option(...)
    "before_image_saved",  # (ImageSaveParams): change image or infotext before the file is written
    "image_saved",  # (ImageSaveParams): filename is set
    "cfg_denoiser",  # (CFGDenoiserParams): before each model pass; x / text_cond / text_uncond replaceable
    "model_loaded",  # (LoadedCheckpoint): a checkpoint became the current one
    "infotext_pasted",  # (infotext: str, fields: dict[str, str]): adjust the parsed fields in place
)


@dataclass
class ImageSaveParams:
    """One image about to be saved (before_image_saved) or just saved (image_saved).

    `pnginfo["parameters"]` is the infotext written into the file."""

    image: Image.Image
    p: Processing
    filename: str | None
    pnginfo: dict[str, str] = field(default_factory=dict)


@dataclass
class CFGDenoiserParams:
    """One model pass of the denoising loop. `x` is the latent batch the UNet gets (with CFG the
    unconditional half first), `sigma` the noise level of this step (a float tensor, one value a latent),
    `text_cond` / `text_uncond` the prompt / negative prompt embeddings (text_uncond is None without CFG).
    Assign new tensors of the same shape to change what the model sees."""

    x: Any
    image_cond: Any
    sigma: Any
    sampling_step: int
    total_sampling_steps: int
    text_cond: Any
    text_uncond: Any


class Callbacks:
    """Registered callbacks by event, each with the extension it came from, in registration order."""

    def __init__(self) -> None:
        self._entries: dict[str, list[tuple[Owner, Callable[..., Any]]]] = {event: [] for event in EVENTS}

    def add(self, event: str, owner: Owner, callback: Callable[..., Any]) -> None:
        if event not in self._entries:
            raise InvalidParameter(f"unknown callback {event!r}; known: {', '.join(EVENTS)}")
        if not callable(callback):
            raise InvalidParameter(f"on_{event} needs a function, got {callback!r}")
        self._entries[event].append((owner, callback))

    def entries(self, event: str) -> list[tuple[Owner, Callable[..., Any]]]:
        return list(self._entries[event])
