"""modules.shared: A1111's opts, state, cmd_opts and sd_model, as views onto the App whose extension code
is running (read when used: `from modules.shared import opts` at import time binds the loading App)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from webui.compat.a1111.modules import _app
from webui.compat.a1111.modules.options import OptionHTML, OptionInfo, options_section
from webui.compat.a1111.views import OptionsView, SdModelView, StateView

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

__all__ = ["OptionHTML", "OptionInfo", "options_section"]

log = logging.getLogger("modules.shared")
# A1111 constants extensions read
device = None
demo = None  # the gr.Blocks: on_app_started receives it
prompt_styles = None  # styles are ours (webui/services/styles.py), not A1111's StyleDatabase


def _sd_model(plugins: Plugins) -> Any:
    loaded = plugins._last_model
    return SdModelView(loaded) if loaded is not None else None


# A1111's flags that name folders hold the folder itself by default; ours hold None for "the default".
_MODEL_DIRS = {
    "ckpt_dir": "Stable-diffusion", "lora_dir": "Lora", "vae_dir": "VAE", "embeddings_dir": "embeddings",
    "hypernetwork_dir": "hypernetworks", "controlnet_dir": "ControlNet", "esrgan_models_path": "ESRGAN",
}  # fmt: skip


def _cmd_opts(plugins: Plugins) -> argparse.Namespace:
    """The App's flags, folder flags left at their default filled in as A1111 fills them."""
    values = vars(plugins.args).copy()
    data_dir = plugins.user_dir.parent
    values["data_dir"] = str(data_dir)
    for name, folder in _MODEL_DIRS.items():
        if values.get(name) is None:
            values[name] = str(data_dir / ("embeddings" if name == "embeddings_dir" else f"models/{folder}"))
    return argparse.Namespace(**values)


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "opts": OptionsView,
    "state": StateView,
    "cmd_opts": lambda plugins: _cmd_opts(plugins),
    "sd_model": _sd_model,
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)


def reload_gradio_theme(theme_name: str | None = None) -> None:
    """Themes are the program's own here."""
