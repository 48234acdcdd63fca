"""modules.script_callbacks: A1111's 21 on_* registrations.

Those our plugin API has (app_started, ui_tabs, ui_settings, before_image_saved, image_saved,
cfg_denoiser, model_loaded, infotext_pasted) register there and are called where ours are. The others are
kept by the App's A1111 layer (CompatState.callbacks): before_ui and the component callbacks run while the
page is built (ui_hooks.py), cfg_denoised / cfg_after_cfg after each model pass (cfg_hooks.py),
image_grid in modules.images.image_grid; which are never called, and why, is listed in
docs/extensions.md. A1111's keyword `name=` is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webui.compat.a1111.modules import _app
from webui.plugins import api
from webui.plugins.callbacks import CFGDenoiserParams, ImageSaveParams

__all__ = ["CFGDenoiserParams", "ImageSaveParams"]


@dataclass
class CFGDenoisedParams:
    x: Any
    sampling_step: int
    total_sampling_steps: int
    inner_model: Any = None


@dataclass
class AfterCFGCallbackParams:
    x: Any
    sampling_step: int
    total_sampling_steps: int


@dataclass
class UiTrainTabParams:
    txt2img_preview_params: Any


@dataclass
class ImageGridLoopParams:
    imgs: list[Any]
    cols: int
    rows: int


@dataclass
class BeforeTokenCounterParams:
    prompt: str
    steps: int
    styles: list[str] = field(default_factory=list)
    is_positive: bool = True


@dataclass
class ExtraNoiseParams:
    noise: Any
    x: Any
    xi: Any


Callback = Callable[..., Any]


def _ours(register: Callable[[Callback], None]) -> Callable[..., None]:
    def on(callback: Callback, *, name: str | None = None) -> None:
        register(callback)

    on.__doc__ = register.__doc__
    return on


def _kept(event: str) -> Callable[..., None]:
    def on(callback: Callback, *, name: str | None = None) -> None:
        _app.compat().add_callback(event, callback)

    on.__name__ = f"on_{event}"
    return on


on_app_started = _ours(api.on_app_started)
on_ui_tabs = _ours(api.on_ui_tabs)
on_ui_settings = _ours(api.on_ui_settings)
on_before_image_saved = _ours(api.on_before_image_saved)
on_image_saved = _ours(api.on_image_saved)
on_cfg_denoiser = _ours(api.on_cfg_denoiser)
on_model_loaded = _ours(api.on_model_loaded)
on_infotext_pasted = _ours(api.on_infotext_pasted)
on_before_ui = _kept("before_ui")
on_image_grid = _kept("image_grid")
on_cfg_denoised = _kept("cfg_denoised")
on_cfg_after_cfg = _kept("cfg_after_cfg")
on_before_component = _kept("before_component")
on_after_component = _kept("after_component")
on_script_unloaded = _kept("script_unloaded")
on_extra_noise = _kept("extra_noise")
on_before_token_counter = _kept("before_token_counter")
on_list_optimizers = _kept("list_optimizers")
on_list_unets = _kept("list_unets")
on_ui_train_tabs = _kept("ui_train_tabs")


def remove_current_script_callbacks() -> None:
    """A1111 removes a reloaded script's callbacks; scripts are never reloaded here."""


def remove_callbacks_for_function(callback: Callback) -> None:
    """See remove_current_script_callbacks."""
