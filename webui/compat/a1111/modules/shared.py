"""modules.shared: A1111's opts, state, cmd_opts and sd_model, as views onto the App whose extension code
is running (read when used: `from modules.shared import opts` at import time binds the loading App)."""

from __future__ import annotations

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


def _sd_model(plugins: Plugins) -> Any:
    loaded = plugins._last_model
    return SdModelView(loaded) if loaded is not None else None


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "opts": OptionsView,
    "state": StateView,
    "cmd_opts": lambda plugins: plugins.args,
    "sd_model": _sd_model,
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)


def reload_gradio_theme(theme_name: str | None = None) -> None:
    """Themes are the program's own here."""
