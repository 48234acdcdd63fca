"""modules.scripts: A1111's Script with every hook it calls, on top of our webui.plugins Script.

Our flow calls process, process_batch, postprocess_image and postprocess (webui/plugins/runner.py);
the A1111 layer adds setup, before_process, after_extra_networks_activate, before_process_batch,
postprocess_image_after_composite, postprocess_batch(_list) (webui/compat/a1111/state.py) and, while
the page is built, before_component / after_component (ui_hooks.py). The other hooks exist so that
overriding them is harmless; which are never called, and why, is listed in docs/extensions.md.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from webui.compat.a1111.batch_hooks import PostprocessBatchListArgs
from webui.compat.a1111.modules import _app
from webui.compat.a1111.modules.ui_components import InputAccordion
from webui.compat.a1111.ui_hooks import OnComponent
from webui.plugins import script as _ours
from webui.plugins.api import basedir as _basedir

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

__all__ = ["InputAccordion", "OnComponent", "PostprocessBatchListArgs"]

AlwaysVisible = _ours.AlwaysVisible
PostprocessImageArgs = _ours.PostprocessImageArgs


@dataclass
class PostSampleArgs:
    samples: Any  # the batch's latents, before decoding


@dataclass
class PostprocessMaskOverlayArgs:
    index: int
    mask_for_overlay: Any
    overlay_image: Any


@dataclass
class MaskBlendArgs:
    current_latent: Any
    nmask: Any
    init_latent: Any
    mask: Any
    blended_latent: Any
    denoiser: Any = None
    sigma: Any = None
    is_final_blend: bool = False


class Script(_ours.Script):
    """A1111's scripts.Script. One instance serves both tabs here: ui() and show() set is_img2img first."""

    section: str | None = None
    create_group = True
    group: Any = None
    paste_field_names: list[str] | None = None
    api_info: Any = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname: str | None = None
    sorting_priority = 0
    args_from: int | None = None
    args_to: int | None = None
    controls: list[Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("show", "ui"):
            if name in vars(cls):
                setattr(cls, name, _knowing_tab(vars(cls)[name]))

    def elem_id(self, item_id: str) -> str:
        """A1111's element id: '<tab>_<title as a word>_<item_id>'."""
        title = re.sub(r"[^a-z_0-9]", "", re.sub(r"\s", "_", self.title().lower()))
        return f"{'img2img' if self.is_img2img else 'txt2img'}_{title}_{item_id}"

    def setup(self, p: Any, *args: Any) -> None: ...
    def before_process(self, p: Any, *args: Any) -> None: ...
    def before_process_batch(self, p: Any, *args: Any, **kwargs: Any) -> None: ...
    def after_extra_networks_activate(self, p: Any, *args: Any, **kwargs: Any) -> None: ...
    def postprocess_batch(self, p: Any, *args: Any, **kwargs: Any) -> None: ...
    def postprocess_batch_list(
        self, p: Any, pp: PostprocessBatchListArgs, *args: Any, **kwargs: Any
    ) -> None: ...
    def post_sample(self, p: Any, ps: Any, *args: Any) -> None: ...
    def postprocess_maskoverlay(self, p: Any, ppmo: PostprocessMaskOverlayArgs, *args: Any) -> None: ...
    def postprocess_image_after_composite(self, p: Any, pp: Any, *args: Any) -> None: ...
    def on_mask_blend(self, p: Any, mba: MaskBlendArgs, *args: Any) -> None: ...
    def before_hr(self, p: Any, *args: Any) -> None: ...
    def before_component(self, component: Any, **kwargs: Any) -> None: ...
    def after_component(self, component: Any, **kwargs: Any) -> None: ...

    def on_before_component(self, callback: Any, *, elem_id: str) -> None:
        self.__dict__.setdefault("on_before_component_elem_id", []).append((elem_id, callback))

    def on_after_component(self, callback: Any, *, elem_id: str) -> None:
        self.__dict__.setdefault("on_after_component_elem_id", []).append((elem_id, callback))


def _knowing_tab(method: Any) -> Any:
    def wrapper(self: Script, is_img2img: bool, *args: Any, **kwargs: Any) -> Any:
        self.is_img2img, self.is_txt2img = bool(is_img2img), not is_img2img
        return method(self, is_img2img, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


def basedir() -> str:
    """The folder of the extension whose code is running (a str, as in A1111)."""
    return str(_basedir())


class ScriptRunnerView:
    """scripts.scripts_txt2img / scripts_img2img: the tab's scripts as A1111's ScriptRunner lists them."""

    def __init__(self, plugins: Plugins, kind: str) -> None:
        self._plugins, self._kind = plugins, kind

    @property
    def _runner(self) -> Any:  # looked up when read: the runner is built once all scripts have loaded
        return self._plugins.runner(self._kind)

    @property
    def alwayson_scripts(self) -> list[Any]:
        return [loaded.script for loaded in self._runner.alwayson]

    @property
    def selectable_scripts(self) -> list[Any]:
        return [loaded.script for loaded in self._runner.selectable]

    @property
    def scripts(self) -> list[Any]:
        return [loaded.script for loaded in self._runner.all]

    @property
    def titles(self) -> list[str]:
        return self._runner.titles()


class ScriptFile(NamedTuple):
    basedir: str
    filename: str
    path: str


def _list_scripts(
    plugins: Plugins, scriptdirname: str, extension: str, *, include_extensions: bool = True
) -> list[ScriptFile]:
    """scripts.list_scripts: the files ending in `extension` in `scriptdirname` of each loaded extension."""
    return [
        ScriptFile(str(loaded.path), path.name, str(path))
        for loaded in (plugins.loaded if include_extensions else [])
        for path in sorted((loaded.path / scriptdirname).glob(f"*{extension}"))
        if path.is_file()
    ]


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "scripts_txt2img": lambda plugins: ScriptRunnerView(plugins, "txt2img"),
    "scripts_img2img": lambda plugins: ScriptRunnerView(plugins, "img2img"),
    "list_scripts": lambda plugins: functools.partial(_list_scripts, plugins),
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)
